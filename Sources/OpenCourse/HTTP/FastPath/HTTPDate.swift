import Foundation
import Synchronization

/// The `Date` field (RFC 9110 5.6.7), formatted at most once a second. (Hummingbird's own is
/// renewed by a timer every second, so the two may differ by up to a second.)
enum HTTPDate {
    private static let current = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static var now: String {
        var time = time_t(0)
        Foundation.time(&time)
        let second = Int(time)
        return current.withLock { current in
            if current.second != second {
                current = (second, format(time))
            }
            return current.text
        }
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
