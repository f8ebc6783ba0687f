import Foundation
import NIOPosix

/// The `Date` field (RFC 9110 5.6.7), formatted at most once a second on each thread. (Hummingbird's
/// own is renewed by a timer every second, so the two may differ by up to a second.) Kept per thread
/// rather than behind one lock that every fast answer on every loop takes: with more runnable
/// threads than cores, a holder preempted inside the lock sent the other loops into futex waits
/// (BENCHMARKS.md, "Event loops, locks and wrk's share").
enum HTTPDate {
    private final class Stamp: Sendable {
        let second: Int
        let text: String

        init(second: Int, text: String) {
            self.second = second
            self.text = text
        }
    }

    private static let stamp = ThreadSpecificVariable<Stamp>()
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static var now: String {
        var time = time_t(0)
        Foundation.time(&time)
        let second = Int(time)
        if let current = stamp.currentValue, current.second == second {
            return current.text
        }
        let fresh = Stamp(second: second, text: format(time))
        stamp.currentValue = fresh
        return fresh.text
    }

    static func format(_ time: time_t) -> String {
        var time = time
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
