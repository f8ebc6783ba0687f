import Foundation

/// A response as opencourse sent it (`curl -si`), minus the headers Hummingbird adds itself
/// (`Date`, `Content-Length`); `date` keeps the captured `Date` for a server that adds none.
public struct CapturedResponse: Sendable {
    public let headers: [(name: String, value: String)]
    public let date: String?
    public let body: [UInt8]

    public init(contentsOf path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let end = data.firstRange(of: Data("\r\n\r\n".utf8)) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n").dropFirst()
        let fields: [(name: String, value: String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        headers = fields.filter { !["date", "content-length", "connection"].contains($0.name.lowercased()) }
        date = fields.first { $0.name.lowercased() == "date" }?.value
        body = Array(data[end.upperBound...])
    }

    /// health.http, get.http and list.http from the folder in `FLOOR_RESPONSES`.
    public static func load() throws -> (health: CapturedResponse, get: CapturedResponse, list: CapturedResponse) {
        let folder = ProcessInfo.processInfo.environment["FLOOR_RESPONSES"] ?? "."
        return (
            try CapturedResponse(contentsOf: folder + "/health.http"),
            try CapturedResponse(contentsOf: folder + "/get.http"),
            try CapturedResponse(contentsOf: folder + "/list.http")
        )
    }

    public static var port: Int {
        ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 8090
    }
}
