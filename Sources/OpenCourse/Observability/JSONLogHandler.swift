import Foundation
import Logging
import Synchronization

/// Where log lines go: standard error in the service, a buffer in tests.
public struct LogSink: Sendable {
    let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public static let standardError = LogSink { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
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
        let time = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        switch format {
        case .json:
            var object: [String: String] = ["ts": time, "level": event.level.rawValue, "msg": "\(event.message)", "logger": label]
            for (key, value) in fields { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            sink.write(String(decoding: data, as: UTF8.self))
        case .text:
            let rendered = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.write("\(time) \(event.level.rawValue.uppercased()) \(event.message)\(rendered.isEmpty ? "" : " " + rendered)")
        }
    }
}
