import Foundation
import Logging
import Synchronization

/// Where log lines go: standard error in the service, a buffer in tests.
public struct LogSink: Sendable {
    let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    /// Standard error, written from a thread of its own (`LogWriter`). Lines still buffered when
    /// the process exits are written then.
    public static let standardError: LogSink = {
        let writer = LogWriter.standardError
        atexit { LogWriter.standardError.flushAtExit() }
        return LogSink { writer.append($0) }
    }()
}

/// A small swift-log handler (swift-log ships none for JSON): one JSON object per line, or a
/// readable text line. Metadata is flattened to strings.
public struct StructuredLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: LogFormat
    let sink: LogSink

    public init(label: String, level: Logger.Level, format: LogFormat, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let time = LogLine.timestamp()
        switch format {
        case .json:
            var object: [String: String] = ["ts": time, "level": event.level.rawValue, "msg": "\(event.message)", "logger": label]
            for (key, value) in fields { object[key] = "\(value)" }
            sink.write(LogLine.json(object))
        case .text:
            let rendered = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.write("\(time) \(event.level.rawValue.uppercased()) \(event.message)\(rendered.isEmpty ? "" : " " + rendered)")
        }
    }
}

/// Log lines written by hand. With `JSONSerialization` and Foundation's ISO 8601 format style an
/// access-log line cost about 130 µs, more than twice what serving `/health` costs, so the default
/// log level made the service three times slower than the benchmarks (which log warnings only).
/// A test holds both functions to Foundation's results.
enum LogLine {
    /// A flat object of strings with its keys in order, as `JSONSerialization` writes it with
    /// `.sortedKeys` and `.withoutEscapingSlashes`.
    static func json(_ object: [String: String]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        for (index, (key, value)) in object.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendString(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(UInt8.lowercaseHexDigit(byte >> 4))
                out.append(UInt8.lowercaseHexDigit(byte & 0x0F))
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Now in UTC as `2026-11-26T10:17:16.312Z` (milliseconds, truncated).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Timestamp.iso8601(seconds: now.tv_sec, milliseconds: now.tv_nsec / 1_000_000)
    }

    /// A duration in milliseconds with two decimals, as `String(format: "%.2f")` would (but ties
    /// round up); a negative one, which a monotonic clock does not give, as `0.00`.
    static func milliseconds(_ duration: Duration) -> String {
        guard duration > .zero else { return "0.00" }
        let (seconds, attoseconds) = duration.components
        // Hundredths of a millisecond are 10^13 attoseconds; no overflow below ~3 million years.
        let hundredths = seconds * 100_000 + (attoseconds + 5_000_000_000_000) / 10_000_000_000_000
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
