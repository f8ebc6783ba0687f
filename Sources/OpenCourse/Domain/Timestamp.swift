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

extension Timestamp {
    /// `date` in UTC as `2026-11-26T10:17:16.312Z`, to the rounded millisecond: how the API prints
    /// instants (the logs print the clock's time through `iso8601(seconds:milliseconds:)`).
    /// Written by hand because Foundation's ISO 8601 style truncates: an instant stored as .616 s
    /// came out as .615, the Double nearest a millisecond being often just below it.
    static func iso8601(_ date: Date) -> String {
        let (seconds, milliseconds) = milliseconds(of: date).quotientAndRemainder(dividingBy: 1000)
        // Before 1970 the remainder is negative; borrow a second.
        return milliseconds < 0
            ? iso8601(seconds: Int(seconds) - 1, milliseconds: Int(milliseconds) + 1000)
            : iso8601(seconds: Int(seconds), milliseconds: Int(milliseconds))
    }

    static func iso8601(seconds: Int, milliseconds: Int) -> String {
        var time = seconds
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil, parts.tm_year + 1900 >= 0 else { return "0000-01-01T00:00:00.000Z" }
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor <= value / 10 { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        out.append(UInt8(ascii: "."))
        digits(milliseconds, 3)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}
