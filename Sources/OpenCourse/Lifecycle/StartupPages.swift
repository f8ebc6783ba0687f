import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Start-up (argument parsing, configuration, migrations, the OpenAPI document, Foundation's own
/// set-up) touches code and read-only data that serving never runs again: in a release build about
/// half of the 42 MiB resident right after start-up. Once serving, this process unmaps those pages
/// (`MADV_DONTNEED`) from its read-only mappings of files: they stay in the kernel's page cache like
/// any file's pages (reclaimable, shared with other processes), and what serving needs comes back
/// on first use as a minor fault, without reading the disk. Only mappings that hold no private
/// copies qualify: a read-only mapping with anonymous pages (RELRO data that the dynamic linker
/// relocated, then protected) would lose its relocations, and writable ones hold program state.
enum StartupPages {
    struct Released: Sendable {
        var residentBytesBefore: Int
        var residentBytesAfter: Int
    }

    /// Unmaps the pages of this process's clean read-only file mappings; nil where `/proc` is
    /// missing (not Linux).
    static func release() -> Released? {
        #if os(Linux)
        guard let smaps = procFile("/proc/self/smaps"), let before = residentBytes() else { return nil }
        for range in cleanReadOnlyFileRanges(smaps: smaps) {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), Int(range.upperBound - range.lowerBound), MADV_DONTNEED)
        }
        return Released(residentBytesBefore: before, residentBytesAfter: residentBytes() ?? before)
        #else
        return nil
        #endif
    }

    /// The address ranges in `/proc/self/smaps` text that map a file privately, without write
    /// permission and without anonymous (copied-on-write) pages. Shared mappings (SQLite's `-shm`
    /// file) are left alone too.
    static func cleanReadOnlyFileRanges(smaps: String) -> [Range<UInt>] {
        var ranges: [Range<UInt>] = []
        var candidate: Range<UInt>?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if !first.hasSuffix(":") {
                // A mapping's header: "start-end perms offset device inode path".
                candidate = nil
                let bounds = first.split(separator: "-")
                guard fields.count == 6, bounds.count == 2, fields[1].utf8.count == 4,
                      let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end,
                      fields[1].utf8.last == UInt8(ascii: "p"), !fields[1].contains("w"),
                      fields[5].trimmingPrefix(while: { $0 == " " }).first == "/" else { continue }
                candidate = start..<end
            } else if first == "Anonymous:", let range = candidate {
                candidate = nil
                if fields.count > 1, fields[1] == "0" { ranges.append(range) }
            }
        }
        return ranges
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
