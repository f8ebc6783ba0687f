import CReadOnlySegments
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Start-up (argument parsing, configuration, migrations, the OpenAPI document, Foundation's own
/// set-up) touches code and constants that serving never uses again: in a release build about
/// half of the 42 MiB resident right after start-up. Once serving, this process unmaps the pages of
/// every loaded object's read-only segments (`MADV_DONTNEED`, in `CReadOnlySegments`): they stay in
/// the kernel's page cache like any file's pages (reclaimable, shared with other processes), and
/// what serving needs comes back on first use as a minor fault, without reading the disk.
/// Read-only segments hold no private copies (relocated data lives in writable segments, made
/// read-only afterwards; objects with text relocations are skipped), so nothing is lost. The
/// segments come from the dynamic linker (`dl_iterate_phdr`), which holds its lock meanwhile: no
/// mapping can change under the call, as it could between reading `/proc/self/maps` and acting.
enum StartupPages {
    struct Released: Sendable {
        var residentBytesBefore: Int
        var residentBytesAfter: Int
    }

    /// Unmaps the pages of the read-only segments; nil where `/proc` is missing (not Linux).
    static func release() -> Released? {
        guard let before = residentBytes() else { return nil }
        _ = opencourse_unmap_read_only_segments()
        return Released(residentBytesBefore: before, residentBytesAfter: residentBytes() ?? before)
    }

    /// Resident set size from `/proc/self/statm` (its second field, in pages).
    static func residentBytes() -> Int? {
        guard let statm = procFile("/proc/self/statm") else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// A whole `/proc` file, read until end of file: Foundation's `String(contentsOfFile:)`
    /// returned only the first few dozen lines of `/proc/self/maps` (a `/proc` file's size is
    /// given as 0).
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
