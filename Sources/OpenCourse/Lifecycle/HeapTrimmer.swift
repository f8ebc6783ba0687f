#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle

/// glibc keeps memory freed to its per-thread arenas for reuse, and returns it to the system only
/// from the top of a heap. After a burst (a spike of connections, a bulk import) several MiB of
/// free pages stay resident between live blocks: 4.6 of 14 MiB of heap after compare.py's seeding.
/// `malloc_trim` gives back every whole free page: under a `wrk -c64` load it took 20 to 700 µs
/// (median ~90) with the arena locks held, and only pages that are reused fault in again. The
/// first one after start-up frees start-up's garbage and takes longer (11 ms, before traffic).
struct HeapTrimmer: Service {
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                // Reading the resident set costs a file read: only when someone is looking.
                let tracing = logger.logLevel <= .trace
                let before = tracing ? StartupPages.residentBytes() : nil
                let took = ContinuousClock().measure { Self.trim() }
                guard tracing else { continue }
                let microseconds = took.components.seconds * 1_000_000 + took.components.attoseconds / 1_000_000_000_000
                var metadata: Logger.Metadata = ["microseconds": "\(microseconds)"]
                if let before, let after = StartupPages.residentBytes() {
                    metadata["resident_kib_before"] = "\(before >> 10)"
                    metadata["resident_kib_after"] = "\(after >> 10)"
                }
                logger.trace("heap trimmed", metadata: metadata)
            }
        }
    }

    static func trim() {
        // Its result (whether memory was given back) says nothing the RSS readings do not.
        _ = mallocTrim?(0)
    }

    /// glibc's `malloc_trim` (declared in `malloc.h`, which the Glibc module does not include);
    /// nil with another C library.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()
}
