import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Start-up (argument parsing, configuration, migrations, the OpenAPI document, Foundation's own
/// set-up) touches code and read-only data that serving never runs again: in a release build about
/// half of the 42 MiB resident right after start-up. Those pages are clean copies of files, which
/// the kernel would drop under memory pressure anyway; asking it to drop them now
/// (`MADV_PAGEOUT`) leaves resident what serving uses. The kernel skips pages that other processes
/// map too (a shared library another program has loaded), and a dropped page that is needed again
/// comes back on first use, from the page cache or the disk.
enum StartupPages {
    struct Released: Sendable {
        var residentBytesBefore: Int
        var residentBytesAfter: Int
    }

    /// Advises the kernel to reclaim the file-backed private mappings of this process; nil where
    /// `/proc` is missing (not Linux).
    static func release() -> Released? {
        #if os(Linux)
        guard let maps = procFile("/proc/self/maps"), let before = residentBytes() else { return nil }
        for line in maps.split(separator: "\n") {
            guard let range = fileBackedPrivateRange(line) else { continue }
            // EINVAL on kernels before 5.4, which lack MADV_PAGEOUT: nothing to do then.
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), Int(range.upperBound - range.lowerBound), MADV_PAGEOUT)
        }
        return Released(residentBytesBefore: before, residentBytesAfter: residentBytes() ?? before)
        #else
        return nil
        #endif
    }

    /// The address range of a `/proc/self/maps` line that maps a file privately. Shared mappings
    /// (SQLite's `-shm` file) are left alone: dropping them would mean writing them back.
    static func fileBackedPrivateRange(_ line: Substring) -> Range<UInt>? {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count == 6, fields[1].utf8.last == UInt8(ascii: "p"),
              fields[5].trimmingPrefix(while: { $0 == " " }).first == "/" else { return nil }
        let bounds = fields[0].split(separator: "-")
        guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end else { return nil }
        return start..<end
    }

    /// Resident set size from `/proc/self/statm` (its second field, in pages).
    static func residentBytes() -> Int? {
        guard let statm = procFile("/proc/self/statm") else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// A whole `/proc` file, read until end of file: Foundation's `String(contentsOfFile:)`
    /// returned only the first few dozen lines of `maps` (a `/proc` file's size is given as 0).
    static func procFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(contentsOf: chunk[..<count])
        }
    }
}
