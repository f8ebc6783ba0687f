import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
@testable import OpenCourse

/// The built `opencourse` executable, run as a child process: the real CLI over a real socket.
struct ServerProcess {
    static var executable: URL {
        // Tests run from .build/<config>/, next to the executable they were built with.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = runner.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("opencourse")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/opencourse")
    }

    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a command to completion, feeding `input` to its standard input.
    static func run(_ arguments: [String], environment: [String: String], input: String? = nil) async throws -> Result {
        try await offThePool {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.environment = environment
            let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
            process.standardOutput = stdout
            process.standardError = stderr
            process.standardInput = stdin
            try process.run()
            if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
            try stdin.fileHandleForWriting.close()
            let out = stdout.fileHandleForReading.readDataToEndOfFile()
            let err = stderr.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
        }
    }

    let process: Process
    let port: Int
    let errorLog: URL

    /// Starts `opencourse serve` on a free port and waits until /health answers.
    static func serve(environment: [String: String], arguments: [String] = []) async throws -> ServerProcess {
        let port = try freePort()
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--port", "\(port)"] + arguments
        var environment = environment
        environment["HOST"] = "127.0.0.1"
        process.environment = environment
        let errorLog = FileManager.default.temporaryDirectory.appendingPathComponent("opencourse-serve-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        let handle = try FileHandle(forWritingTo: errorLog)
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        let server = ServerProcess(process: process, port: port, errorLog: errorLog)
        for _ in 0..<200 {
            if let response = try? await server.call(.get, "/health"), response.status == .ok { return server }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.terminate()
        throw ServerDidNotStart(log: (try? String(contentsOf: errorLog, encoding: .utf8)) ?? "")
    }

    struct ServerDidNotStart: Error, CustomStringConvertible {
        var log: String
        var description: String { "opencourse serve did not start:\n\(log)" }
    }

    /// One request on a new connection.
    func call(_ method: HTTPRequest.Method, _ path: String, json: [String: any Sendable]? = nil, token: String? = nil) async throws -> APIResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
            headers[.contentType] = "application/json"
        }
        let request = TestClient.Request(path, method: method, authority: "127.0.0.1", headers: headers, body: body)
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.execute(request)
        }
        return APIResponse(status: response.status, headers: response.headers, body: response.body.map { Data(buffer: $0) } ?? Data())
    }

    /// `body` with one client whose requests share a kept-alive connection.
    func withClient<T: Sendable>(_ body: @escaping @Sendable (TestClient) async throws -> T) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: port, operation: body)
    }

    /// The server's private (anonymous) resident memory, from `/proc`.
    var anonymousResidentBytes: Int {
        get throws { try statusKiB("RssAnon") * 1024 }
    }

    /// A line of the server's `/proc/PID/status` given in kB (`VmRSS`, `VmHWM`, `RssAnon`).
    func statusKiB(_ field: String) throws -> Int {
        let status = try #require(StartupPages.procFile("/proc/\(process.processIdentifier)/status"))
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix(field + ":") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    /// Resident KiB of the server's mappings of one file, from `/proc/PID/smaps`.
    func residentKiB(ofMappingsOf path: String) throws -> Int {
        let smaps = try #require(StartupPages.procFile("/proc/\(process.processIdentifier)/smaps"))
        var inFile = false, total = 0
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), !first.hasSuffix(":") {
                inFile = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inFile, fields.first == "Rss:", fields.count > 1, let kib = Int(fields[1]) {
                total += kib
            }
        }
        return total
    }

    /// Sends SIGTERM and waits for the exit status.
    func stop() async throws -> Int32 {
        process.terminate()
        for _ in 0..<300 where process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { process.interrupt() }
        return await process.exitStatus()
    }

    /// A port nothing listens on, for "the database is unreachable": connecting is refused at
    /// once, and unlike a port just freed, no other test's server can take it meanwhile.
    static let closedPort = 1

    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
