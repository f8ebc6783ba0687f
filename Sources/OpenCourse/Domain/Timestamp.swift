import Foundation

/// Timestamps are kept at millisecond precision everywhere: PostgreSQL stores microseconds and
/// SQLite a double, so rounding once when a value is made (or read back) lets the same instant
/// compare equal in both databases, in cursors and in JSON.
enum Timestamp {
    static func now() -> Date {
        fromMilliseconds(milliseconds(of: Date()))
    }

    static func milliseconds(of date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func fromMilliseconds(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    static func normalized(_ date: Date) -> Date {
        fromMilliseconds(milliseconds(of: date))
    }
}
