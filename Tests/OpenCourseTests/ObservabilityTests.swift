import Foundation
import HTTPTypes
import HummingbirdTesting
import SQLKit
import Synchronization
import Testing
@testable import OpenCourse

@Suite("Request ids, access log, metrics")
struct ObservabilityTests {
    @Test func requestIDsAreKeptWhenSaneAndMadeOtherwise() async throws {
        try await withApp(.sqlite) { client in
            let kept = try await client.call(.get, "/health", headers: [.requestID: "abc-123_X.y"])
            #expect(kept.headers[.requestID] == "abc-123_X.y")
            for bad in ["", String(repeating: "a", count: 129), "has space", "semi;colon", "ünï"] {
                let response = try await client.call(.get, "/api/v1/nope", headers: [.requestID: bad])
                let id = try #require(response.headers[.requestID])
                #expect(id != bad && RequestObservabilityMiddleware.acceptable(id) == id, "\(bad)")
            }
            let first = try #require(try await client.call(.get, "/health").headers[.requestID])
            let second = try #require(try await client.call(.get, "/health").headers[.requestID])
            #expect(first != second)
            #expect(RequestObservabilityMiddleware.acceptable(first) == first)
        }
    }

    /// A series named once (the fast path's) is the registry's own: counted from many threads at
    /// once it loses nothing, and it is listed once, beside what `recordRequest` counts into it.
    @Test func seriesNamedOnceAreTheRegistrysOwn() async {
        let metrics = AppMetrics()
        let series = LazyRequestSeries(metrics: metrics, route: "/health", method: "GET", status: 200)
        let exposition = { String(decoding: metrics.exposition(), as: UTF8.self) }
        #expect(!exposition().contains("http_requests_total"))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<1000 { series.record(.microseconds(5)) } }
            }
            group.addTask {
                for _ in 0..<500 { metrics.recordRequest(route: "/health", method: "GET", status: 200, duration: .microseconds(5)) }
            }
        }
        let lines = exposition().split(separator: "\n").filter { $0.hasPrefix("http_requests_total{") }
        #expect(lines.count == 1)
        #expect(lines.first?.hasSuffix(" 8500") == true, "\(lines)")
        #expect(lines.first?.contains(#"route="/health""#) == true && lines.first?.contains(#"status="200""#) == true)
    }

    /// Generated ids are the process prefix and the counter in base 36, as `String(_:radix:)` writes it.
    @Test func generatedIDsSpellTheCounterInBase36() {
        let prefix = String(decoding: RequestObservabilityMiddleware.processPrefix, as: UTF8.self)
        #expect(prefix.hasSuffix("-") && prefix.count > 1)
        var samples: [UInt64] = [0, 1, 9, 10, 35, 36, 37, 1295, 1296, 46_655, 46_656, UInt64.max, UInt64.max - 1]
        var generator = SystemRandomNumberGenerator()
        samples += (0..<200).map { _ in generator.next() >> UInt64.random(in: 0...63, using: &generator) }
        for sequence in samples {
            #expect(RequestObservabilityMiddleware.id(sequence: sequence) == prefix + String(sequence, radix: 36), "\(sequence)")
        }
        let ids = (0..<3).map { _ in RequestObservabilityMiddleware.generateID() }
        #expect(ids.allSatisfy { $0.hasPrefix(prefix) } && Set(ids).count == 3)
    }

    @Test func oneAccessLinePerRequestWithRouteUserAndNoSecrets() async throws {
        let capture = LogCapture()
        try await withApp(.sqlite, logger: capture.logger()) { client in
            let (token, userID) = try await client.register("logged@example.com", password: "hunter2-secret-pass")
            let course = try await client.call(.get, "/api/v1/courses/\(UUID())", headers: [.requestID: "trace-me-1"])
            #expect(course.status == .notFound)
            _ = try await client.call(.get, "/api/v1/users/me", token: token, headers: [.requestID: "trace-me-2"])
            _ = try await client.call(.post, "/api/v1/auth/login", json: ["email": "logged@example.com", "password": "hunter2-secret-pass"])
            _ = try await client.call(.put, "/api/v1/users/me", json: ["password": "another-secret-1", "currentPassword": "hunter2-secret-pass"], token: token)

            let lines = capture.objects(message: "request")
            #expect(lines.count == 5)
            let notFound = try #require(lines.first { $0["request_id"] == "trace-me-1" })
            #expect(notFound["method"] == "GET")
            #expect(notFound["status"] == "404")
            #expect(notFound["route"]?.contains("courses") == true)
            #expect(notFound["route"]?.contains("{id}") == true || notFound["route"]?.contains(":id") == true)
            #expect(Double(notFound["duration_ms"] ?? "") != nil)
            #expect(notFound["level"] == "info" && notFound["ts"] != nil)
            let me = try #require(lines.first { $0["request_id"] == "trace-me-2" })
            #expect(me["user_id"] == userID)
            #expect(me["status"] == "200")

            let everything = capture.all.joined(separator: "\n")
            for secret in ["hunter2-secret-pass", "another-secret-1", token, String(token.prefix(20)), "Bearer"] {
                #expect(!everything.contains(secret), "\(secret.prefix(12)) leaked into the log")
            }
        }
    }

    /// The hand-written log line against Foundation's `JSONSerialization`: the same object back
    /// when parsed, keys in byte order, and the same bytes as Foundation's whenever no control
    /// character needs an escape and the keys are lower-case words, as the service's are
    /// (Foundation orders other keys case-insensitively).
    @Test func logLinesAreTheJSONFoundationWrites() throws {
        let pieces = ["a", "Z", "é", "😀", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{8}", "\u{C}", "\u{1F}", "\u{7F}", "\u{2028}", " ", "{}", "=", "0"]
        let words = ["a", "b", "z", "msg", "ts", "route", "user"]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<1_000 {
            let keyPieces = round % 2 == 0 ? words : pieces
            var object: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                let key = (0..<Int.random(in: 1...3, using: &generator)).map { _ in keyPieces.randomElement(using: &generator) ?? "" }.joined()
                object[key] = (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            }
            let line = LogLine.json(object)
            let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(parsed == object, "\(line)")
            let inByteOrder = object.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            let pairs = inByteOrder.map { LogLine.json([$0.key: $0.value]).dropFirst().dropLast() }
            #expect(line == "{" + pairs.joined(separator: ",") + "}")
            let needsEscape = object.contains { ($0.key + $0.value).unicodeScalars.contains { $0.value < 0x20 && !["\n", "\r", "\t"].contains($0) } }
            if round % 2 == 0 && !needsEscape {
                let foundation = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                #expect(line == String(decoding: foundation, as: UTF8.self))
            }
        }
    }

    /// The API's and the logs' timestamps, against Foundation's ISO 8601 style they replace.
    @Test func timestampsAreWhatFoundationFormats() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let milliseconds = Int64.random(in: 0...4_102_444_800_000, using: &generator)
            let date = Timestamp.fromMilliseconds(milliseconds)
            // Foundation truncates, so it is given the instant 0.2 ms later: the Double nearest a
            // millisecond is often just below it.
            let expected = date.addingTimeInterval(0.0002).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            #expect(Timestamp.iso8601(date) == expected, "\(milliseconds)")
            #expect(Timestamp.iso8601(seconds: Int(milliseconds / 1000), milliseconds: Int(milliseconds % 1000)) == expected)
        }
        // Foundation printed this stored instant as .615.
        #expect(Timestamp.iso8601(Timestamp.fromMilliseconds(1_219_522_473_616)) == "2008-08-23T20:14:33.616Z")
        #expect(Timestamp.iso8601(Timestamp.fromMilliseconds(-1)) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.iso8601(Timestamp.fromMilliseconds(1_795_688_236_312)) == "2026-11-26T10:17:16.312Z")
        #expect(Timestamp.iso8601(seconds: 253_402_300_800, milliseconds: 7) == "10000-01-01T00:00:00.007Z")
    }

    @Test func logDurationsAreWhatPrintfFormats() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let nanoseconds = Int64.random(in: 0...20_000_000_000, using: &generator)
            guard nanoseconds % 10_000 != 5_000 else { continue }  // a tie: printf rounds it to even
            let duration = Duration.nanoseconds(nanoseconds)
            #expect(LogLine.milliseconds(duration) == String(format: "%.2f", Double(nanoseconds) / 1e6), "\(nanoseconds)")
        }
        #expect(LogLine.milliseconds(.nanoseconds(-5)) == "0.00")
        #expect(LogLine.milliseconds(.seconds(86_400 * 365)) == "31536000000.00")
    }

    /// Everything written to a pipe's write end, read on a thread of its own until end of file.
    private final class PipeReader: Sendable {
        let writeEnd: Int32
        private let readEnd: Int32
        private let done = DispatchSemaphore(value: 0)
        private let bytes = Mutex<[UInt8]>([])

        init() throws {
            var ends: [Int32] = [0, 0]
            try #require(pipe(&ends) == 0)
            (readEnd, writeEnd) = (ends[0], ends[1])
        }

        func startReading() {
            Thread { [self] in
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = read(readEnd, &chunk, chunk.count)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { break }
                    bytes.withLock { $0.append(contentsOf: chunk[..<count]) }
                }
                close(readEnd)
                done.signal()
            }.start()
        }

        /// Closes the write end and returns the lines read.
        func finish() async -> [String] {
            close(writeEnd)
            await offThePool { [done] in done.wait() }
            return String(decoding: bytes.withLock { $0 }, as: UTF8.self).split(separator: "\n").map(String.init)
        }
    }

    @Test func logWriterKeepsEveryLineOfEveryThreadInOrder() async throws {
        let pipe = try PipeReader()
        pipe.startReading()
        let writer = LogWriter(fileDescriptor: pipe.writeEnd, capacity: 1 << 20)
        await withTaskGroup { group in
            for task in 0..<4 {
                group.addTask { for line in 0..<5_000 { writer.append("task \(task) line \(line)") } }
            }
        }
        writer.flush()
        let lines = await pipe.finish()
        #expect(lines.count == 20_000)
        for task in 0..<4 {
            let numbers = lines.filter { $0.hasPrefix("task \(task) ") }.compactMap { Int($0.split(separator: " ")[3]) }
            #expect(numbers == Array(0..<5_000))
        }
    }

    /// A log pipe nobody reads must not stall the caller (an event loop): lines beyond the buffer
    /// are dropped and counted, and the count is logged once the pipe drains.
    @Test func logWriterDropsLinesInsteadOfWaitingOnAStalledPipe() async throws {
        let pipe = try PipeReader()
        let writer = LogWriter(fileDescriptor: pipe.writeEnd, capacity: 4_096)
        let appended = DispatchSemaphore(value: 0)
        Thread {
            // 1 MB, sixteen times what the pipe holds.
            for line in 0..<20_000 { writer.append("line \(line) " + String(repeating: "x", count: 40)) }
            appended.signal()
        }.start()
        // Not a timing assertion: without the buffer the appends block until the pipe is read.
        #expect(await offThePool { appended.wait(timeout: .now() + 30) } == .success)

        pipe.startReading()
        writer.flush()
        let lines = await pipe.finish()
        let notices = lines.compactMap { line -> [String: String]? in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String] else { return nil }
            return object["msg"] == "log lines dropped: standard error did not keep up" ? object : nil
        }
        let dropped = notices.compactMap { $0["dropped"].flatMap { Int($0) } }.reduce(0, +)
        let kept = lines.filter { $0.hasPrefix("line ") }.compactMap { Int($0.split(separator: " ")[1]) }
        #expect(!notices.isEmpty && notices.allSatisfy { $0["level"] == "warning" })
        #expect(dropped > 0)
        #expect(kept.count + dropped == 20_000)
        #expect(kept == kept.sorted())
    }

    /// At exit the last lines are flushed, but a stalled pipe must not keep the process alive.
    @Test func logWriterGivesUpOnAStalledPipeAtExit() async throws {
        let pipe = try PipeReader()
        let writer = LogWriter(fileDescriptor: pipe.writeEnd, capacity: 1 << 20)
        // More than the pipe holds, so the writer thread blocks in write(2), holding its lock.
        for line in 0..<4_000 { writer.append("line \(line) " + String(repeating: "x", count: 40)) }
        try await Task.sleep(for: .milliseconds(100))
        let flushed = DispatchSemaphore(value: 0)
        Thread {
            writer.flushAtExit()
            flushed.signal()
        }.start()
        // Not a timing assertion: without the bound, flushAtExit never returns.
        #expect(await offThePool { flushed.wait(timeout: .now() + 30) } == .success)
        pipe.startReading()
        writer.flush()
        #expect(await pipe.finish().count == 4_000)
    }

    @Test func textFormatIsOneReadableLine() async throws {
        let capture = LogCapture()
        try await withApp(.sqlite, logger: capture.logger(format: .text)) { client in
            _ = try await client.call(.get, "/health", headers: [.requestID: "text-1"])
            let line = try #require(capture.all.first { $0.contains("request_id=text-1") })
            #expect(line.contains("INFO request"))
            #expect(line.contains("status=200"))
            #expect(!line.contains("\n"))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func metricsInPrometheusFormat(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, _) = try await client.register()
            _ = try await client.call(.post, "/api/v1/auth/login", json: ["email": "nobody@example.com", "password": "password123"])
            for _ in 0..<3 { _ = try await client.call(.get, "/api/v1/courses/\(UUID())") }
            _ = try await client.call(.get, "/api/v1/users/me", token: token)
            let scrape = try await client.call(.get, "/metrics")
            #expect(scrape.status == .ok)
            #expect(scrape.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = String(decoding: scrape.body, as: UTF8.self)
            let notFoundLine = try #require(text.split(separator: "\n").first {
                $0.hasPrefix("http_requests_total") && $0.contains("status=\"404\"") && $0.contains("courses")
            })
            #expect(notFoundLine.hasSuffix(" 3"))
            #expect(!text.contains(UUID().uuidString.prefix(4).lowercased() + "never"))
            #expect(text.contains("http_request_duration_seconds_bucket"))
            #expect(text.contains("opencourse_bcrypt_operations_total{operation=\"hash\"} 1"))
            #expect(text.contains("opencourse_bcrypt_operations_total{operation=\"verify\"} 1"))
            #expect(text.contains("opencourse_db_pool_connections_in_use"))
            #expect(text.contains("opencourse_db_pool_requests_waiting"))
            // Route patterns, never raw ids, label the series.
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("http_requests_total") && $0.contains("-4") })
        }
    }

    /// A failed statement's values (an email, a row) never reach the log, although PostgresNIO's
    /// own debug text of the error carries the binds and the server's detail.
    @Test(arguments: TestDatabase.allCases)
    func databaseErrorsAreLoggedWithoutTheirValues(database: TestDatabase) async throws {
        try await database.withFreshDatabase(poolSize: 1) { backend in
            let secret = "secret-\(UUID().apiString.prefix(8))@example.com"
            let sql = backend.sql
            try await sql.raw("CREATE TABLE secrets (email TEXT UNIQUE, n INTEGER CHECK (n > 0))").run()
            try await sql.raw("INSERT INTO secrets VALUES (\(bind: secret), 1)").run()
            var queries: [SQLQueryString] = [
                "INSERT INTO secrets VALUES (\(bind: secret), 2)",
                "INSERT INTO secrets VALUES (\(bind: secret + ".other"), -1)",
            ]
            // SQLite casts any text to an integer; PostgreSQL rejects it, quoting the value.
            if database == .postgres { queries.append("SELECT CAST(\(bind: secret) AS INTEGER)") }
            var errors: [any Error] = []
            for query in queries {
                do { try await sql.raw(query).run() } catch { errors.append(error) }
            }
            try #require(errors.count == queries.count)
            if database == .postgres {
                #expect(errors.allSatisfy { String(reflecting: $0).contains(secret) })
            }
            // A row that does not decode: the drivers put the cell in the error's description.
            do {
                let row = try #require(try await sql.raw("SELECT email FROM secrets").first())
                _ = try row.decode(column: "email", as: Int.self)
            } catch {
                errors.append(error)
            }
            try #require(errors.count == queries.count + 1)

            let log = LogCapture()
            for error in errors { _ = ProblemDetailsMiddleware.response(for: error, logger: log.logger()) }
            let logged = log.objects(message: "unexpected error").compactMap { $0["error"] }
            #expect(logged.count == errors.count)
            #expect(!log.all.joined().contains("secret-"), "\(log.all)")
            // What is left still says what went wrong.
            let expected = database == .postgres
                ? [["sqlState: 23505", "constraint: secrets_email_key"], ["sqlState: 23514", "secrets_n_check"], ["sqlState: 22P02"], ["PostgresDecodingError(code: typeMismatch", "column: email", "Int"]]
                : [["UNIQUE constraint failed: secrets.email"], ["CHECK constraint failed"], ["DecodingError(", "Int"]]
            for (line, parts) in zip(logged, expected) {
                #expect(parts.allSatisfy { line.contains($0) }, "\(line)")
            }
        }
    }

    @Test func metricsTokenGuardsTheEndpoint() async throws {
        try await withApp(.sqlite, configure: { $0.metricsToken = "scrape-secret" }) { client in
            let anonymous = try await client.call(.get, "/metrics")
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.isProblem)
            #expect(try await client.call(.get, "/metrics", token: "wrong").status == .unauthorized)
            #expect(try await client.call(.get, "/metrics", token: "scrape-secret").status == .ok)
        }
    }
}
