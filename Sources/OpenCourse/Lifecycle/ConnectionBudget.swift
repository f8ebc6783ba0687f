#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many client connections the server accepts at once. Every connection is a file
/// descriptor, and running out of descriptors is fatal, not just refused connections: the
/// database pool cannot connect, and libdispatch on Linux stops the process when it cannot open
/// `/proc` to watch its threads (seen here: SIGILL in `_dispatch_workq_monitor_pools` after 400
/// idle connections under a limit of 256). So the server stops accepting below the limit; further
/// clients wait in the listen backlog until a connection closes.
enum ConnectionBudget {
    /// Raises the soft descriptor limit to the hard one where allowed (a service manager's soft
    /// default of 1024 is common), then leaves a tenth of it, at least 64, for everything else.
    static func derived() -> Int {
        let limit = raisedDescriptorLimit()
        return max(16, limit - max(64, limit / 10))
    }

    private static func raisedDescriptorLimit() -> Int {
        var limits = rlimit()
        guard getrlimit(resource, &limits) == 0 else { return 1024 }
        // The kernel refuses an unlimited soft limit for descriptors; a million is ample.
        let wanted = min(limits.rlim_max, 1 << 20)
        if limits.rlim_cur < wanted {
            var raised = limits
            raised.rlim_cur = wanted
            if setrlimit(resource, &raised) == 0 { limits = raised }
        }
        return Int(clamping: limits.rlim_cur)
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
