import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import OpenCourse

/// The `opencourse` executable itself: commands, exit codes, and the API over a real socket.
@Suite("Command line and real sockets", .serialized)
struct CommandLineTests {
    private static func scratchDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("opencourse-cli-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private static func environment(database: String) -> [String: String] {
        [
            "DATABASE_URL": database, "JWT_SECRET": String(decoding: testSecret, as: UTF8.self),
            "BCRYPT_COST": "4", "LOG_LEVEL": "warning", "SHUTDOWN_DRAIN_SECONDS": "0", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin",
        ]
    }

    private static func postgresURL() async throws -> String {
        let settings = try await PostgresTestServer.createDatabase()
        return "postgres://\(settings.username)@\(settings.host):\(settings.port)/\(settings.database ?? "")"
    }

    /// Beyond `HTTP_MAX_CONNECTIONS` a client waits in the listen backlog, unanswered, until a
    /// connection closes; then it is served. (Over the real process: HummingbirdTesting's live
    /// server drops the application's connection limit when it picks its port.)
    @Test(.timeLimit(.minutes(1)))
    func serveAcceptsAtMostHTTPMaxConnections() async throws {
        var environment = Self.environment(database: "sqlite:" + (try Self.scratchDirectory().appendingPathComponent("budget.sqlite").path))
        environment["HTTP_MAX_CONNECTIONS"] = "3"
        let server = try await ServerProcess.serve(environment: environment)
        do {
            let port = server.port
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // Idle connections fill the budget.
            var held: [any Channel] = []
            for _ in 0..<3 { held.append(try await bootstrap.connect(host: "127.0.0.1", port: port).get()) }
            let answer = FirstBytes()
            let waiting = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(answer) } }
                .connect(host: "127.0.0.1", port: port).get()
            try await waiting.writeAndFlush(ByteBuffer(string: "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
            try await Task.sleep(for: .milliseconds(1500))
            #expect(answer.received.isEmpty, "answered while the budget was full")
            for channel in held { try await channel.close() }
            while answer.received.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            #expect(answer.received.hasPrefix("HTTP/1.1 200"), "\(answer.received.prefix(60))")
            try await waiting.close()
        } catch {
            _ = try? await server.stop()
            throw error
        }
        #expect(try await server.stop() == 0)
    }

    @Test(arguments: TestDatabase.allCases)
    func serveAnswersTheWalkThroughOverARealSocket(database: TestDatabase) async throws {
        let url = database == .sqlite
            ? "sqlite:" + (try Self.scratchDirectory().appendingPathComponent("walk.sqlite").path)
            : try await Self.postgresURL()
        let server = try await ServerProcess.serve(environment: Self.environment(database: url))
        let health = try await server.call(.get, "/health")
        #expect(health.status == .ok)
        #expect(health.json?["status"] as? String == "ok")
        #expect(try await server.call(.get, "/ready").status == .ok)

        let instructor = try await server.call(.post, "/api/v1/auth/register", json: ["email": "ina@example.com", "password": "password123", "role": "instructor"])
        #expect(instructor.status == .created)
        let instructorToken = try #require(instructor.string("accessToken"))
        let course = try await server.call(.post, "/api/v1/courses", json: ["title": "Intro to Swift"], token: instructorToken)
        #expect(course.status == .created)
        let courseID = try #require(course.string("id"))
        let student = try await server.call(.post, "/api/v1/auth/register", json: ["email": "stu@example.com", "password": "password123"])
        let studentToken = try #require(student.string("accessToken"))
        let enrollment = try await server.call(.post, "/api/v1/courses/\(courseID)/enroll", token: studentToken)
        #expect(enrollment.status == .created)
        let mine = try await server.call(.get, "/api/v1/users/me/enrollments", token: studentToken)
        #expect(mine.items.first?["courseId"] as? String == courseID)
        let missing = try await server.call(.get, "/api/v1/courses/\(UUID())")
        #expect(missing.status == .notFound)
        #expect(missing.isProblem)

        #expect(try await server.stop() == 0)
    }

    /// Queries keep no memory for long when pooled connections go idle between them (as they do
    /// at any load below the pool's size): what the pool's timers hold is reused once the idle
    /// timeout (5 s) has passed. With PostgresNIO's default timers (30 and 60 s) each query held
    /// about 1.5 KB for a minute, and the second load below grew by about as much as the first.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/status")))
    func queriesLeaveNoMemoryBehindWhenConnectionsGoIdle() async throws {
        var environment = Self.environment(database: try await Self.postgresURL())
        environment["DB_POOL_SIZE"] = "4"
        environment["RATE_LIMIT_RPS"] = "0"
        let server = try await ServerProcess.serve(environment: environment)
        let registered = try await server.call(.post, "/api/v1/auth/register", json: ["email": "mem@example.com", "password": "password123"])
        let token = try #require(registered.string("accessToken"))
        // Two clients, one request at a time each: every query returns its connection to an idle pool.
        @Sendable func load(_ requests: Int) async throws {
            try await withThrowingTaskGroup { group in
                for _ in 0..<2 {
                    group.addTask {
                        try await server.withClient { client in
                            for _ in 0..<requests {
                                let response = try await client.execute(.init("/api/v1/users/me", method: .get, authority: "127.0.0.1", headers: [.authorization: "Bearer \(token)"]))
                                #expect(response.status == .ok)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await load(3_000)  // also warms buffers, caches and malloc arenas
        try await Task.sleep(for: DatabaseLocation.idleTimeout + .seconds(2))
        let before = try server.anonymousResidentBytes
        try await load(3_000)
        let grown = try server.anonymousResidentBytes - before
        #expect(grown < 3 << 20, "grew by \(grown >> 10) KiB over the second 6,000 requests")
        #expect(try await server.stop() == 0)
    }

    /// Once serving, the pages that only start-up touched are no longer resident; with
    /// `--keep-startup-pages` they stay.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/status")))
    func pagesOnlyStartUpUsedAreGivenBackOnceServing() async throws {
        let directory = try Self.scratchDirectory()
        var resident: [Bool: Int] = [:]
        for keep in [false, true] {
            var environment = Self.environment(database: "sqlite:" + directory.appendingPathComponent("pages-\(keep).sqlite").path)
            environment["LOG_LEVEL"] = "info"
            let server = try await ServerProcess.serve(environment: environment, arguments: keep ? ["--keep-startup-pages"] : [])
            // Measured before any request beyond the start-up check: a request brings back the
            // pages it runs on, and in a debug build those are many.
            try await Task.sleep(for: .seconds(1))  // /health can answer before the pages are given back
            resident[keep] = try server.residentKiB(ofMappingsOf: ServerProcess.executable.path)
            #expect(try await server.stop() == 0)
            // The process's own reading of its resident set, just before and after.
            let line = try String(contentsOf: server.errorLog, encoding: .utf8).split(separator: "\n")
                .first { $0.contains("gave back memory pages only start-up used") }
            if keep {
                #expect(line == nil)
            } else {
                let fields = try JSONSerialization.jsonObject(with: Data(try #require(line).utf8)) as? [String: Any]
                let before = try #require((fields?["resident_kib_before"] as? String).flatMap { Int($0) })
                let after = try #require((fields?["resident_kib_after"] as? String).flatMap { Int($0) })
                #expect(after * 2 < before, "resident set: \(before) KiB before, \(after) KiB after")
            }
        }
        let (released, kept) = (try #require(resident[false]), try #require(resident[true]))
        #expect(released * 10 < kept * 7, "executable resident: \(released) KiB given back, \(kept) KiB kept")
    }

    /// After a burst of large requests the trimmer gives the heap's free pages back to the system.
    /// Measured by the server around each trim, since comparing two servers' resident sets drowns
    /// in noise: how much glibc keeps depends on how many arenas a burst spread over (5-12 MiB
    /// quiet, 4.0 on a loaded CI machine), and `malloc_trim` leaves the tops of threads' arenas alone.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/status")))
    func freeHeapPagesAreGivenBackAfterABurst() async throws {
        var environment = Self.environment(database: "sqlite:" + (try Self.scratchDirectory()).appendingPathComponent("heap.sqlite").path)
        environment["HEAP_TRIM_SECONDS"] = "1"
        environment["LOG_LEVEL"] = "trace"
        environment["RATE_LIMIT_RPS"] = "0"
        environment["REGISTER_MAX_PER_WINDOW"] = "1000000"
        let server = try await ServerProcess.serve(environment: environment)
        func trims() throws -> [(before: Int, after: Int)] {
            // Whole lines only: the server may be writing the last one.
            try String(contentsOf: server.errorLog, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                .filter { $0.contains(#""heap trimmed""#) }
                .compactMap { line in
                    let fields = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    guard let before = (fields?["resident_kib_before"] as? String).flatMap({ Int($0) }),
                          let after = (fields?["resident_kib_after"] as? String).flatMap({ Int($0) }) else { return nil }
                    return (before, after)
                }
        }
        let beforeBurst = try trims().count
        let name = String(repeating: "a", count: 600_000)
        try await withThrowingTaskGroup { group in
            for client in 0..<32 {
                group.addTask {
                    try await server.withClient { http in
                        for request in 0..<5 {
                            let body = ByteBuffer(string: #"{"email":"heap\#(client)x\#(request)@example.com","password":"password123","name":"\#(name)"}"#)
                            let response = try await http.execute(.init(
                                "/api/v1/auth/register", method: .post, authority: "127.0.0.1",
                                headers: [.contentType: "application/json"], body: body
                            ))
                            #expect(response.status == .unprocessableContent)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await Task.sleep(for: .seconds(3.5))
        #expect(try await server.stop() == 0)
        // From the burst's start: on a loaded machine trims during the burst give back much of it.
        let since = try trims().dropFirst(beforeBurst)
        #expect(since.count >= 2, "trims logged since the burst began: \(since.count)")
        // Measured: 34-50 MiB over this burst, quiet or beside two busy loops; 0 with a trim that does nothing.
        let givenBack = since.reduce(0) { $0 + $1.before - $1.after }
        #expect(givenBack > 8 << 10, "trims since the burst began gave back \(givenBack) KiB")
    }

    /// A start-up failure is a failure: a second `serve` on a port already taken exits non-zero.
    @Test func serveOnAPortInUseExitsNonZero() async throws {
        let directory = try Self.scratchDirectory()
        let first = try await ServerProcess.serve(environment: Self.environment(database: "sqlite:" + directory.appendingPathComponent("a.sqlite").path))
        let second = try await ServerProcess.run(
            ["serve", "--host", "127.0.0.1", "--port", "\(first.port)"],
            environment: Self.environment(database: "sqlite:" + directory.appendingPathComponent("b.sqlite").path)
        )
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("Address already in use"), "\(second.stderr)")
        #expect(!second.stderr.contains("stopped before the server started"), "\(second.stderr)")
        #expect(!second.stderr.contains("crashed"), "\(second.stderr)")
        #expect(try await first.stop() == 0)
    }

    @Test func dataSurvivesARestartOnTheSQLiteFile() async throws {
        let url = "sqlite:" + (try Self.scratchDirectory().appendingPathComponent("restart.sqlite").path)
        let first = try await ServerProcess.serve(environment: Self.environment(database: url))
        #expect(try await first.call(.post, "/api/v1/auth/register", json: ["email": "keep@example.com", "password": "password123"]).status == .created)
        #expect(try await first.stop() == 0)
        let second = try await ServerProcess.serve(environment: Self.environment(database: url))
        let login = try await second.call(.post, "/api/v1/auth/login", json: ["email": "keep@example.com", "password": "password123"])
        #expect(login.status == .ok)
        #expect(try await second.stop() == 0)
    }

    @Test(arguments: TestDatabase.allCases)
    func createAdminCreatesOrPromotes(database: TestDatabase) async throws {
        let url = database == .sqlite
            ? "sqlite:" + (try Self.scratchDirectory().appendingPathComponent("admin.sqlite").path)
            : try await Self.postgresURL()
        let environment = Self.environment(database: url)
        let created = try await ServerProcess.run(["create-admin", "--email", "Root@Example.com"], environment: environment, input: "root-password\n")
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("created admin root@example.com"))

        let server = try await ServerProcess.serve(environment: environment)
        let registered = try await server.call(.post, "/api/v1/auth/register", json: ["email": "later@example.com", "password": "password123"])
        #expect(registered.object("user")?["role"] as? String == "student")
        let rootLogin = try await server.call(.post, "/api/v1/auth/login", json: ["email": "root@example.com", "password": "root-password"])
        #expect(rootLogin.object("user")?["role"] as? String == "admin")

        let promoted = try await ServerProcess.run(["create-admin", "--email", "later@example.com"], environment: environment, input: "new-password\n")
        #expect(promoted.status == 0, "\(promoted.stderr)")
        #expect(promoted.stdout.contains("promoted later@example.com to admin"))
        let promotedLogin = try await server.call(.post, "/api/v1/auth/login", json: ["email": "later@example.com", "password": "new-password"])
        #expect(promotedLogin.object("user")?["role"] as? String == "admin")
        #expect(try await server.stop() == 0)

        let weak = try await ServerProcess.run(["create-admin", "--email", "x@example.com"], environment: environment, input: "short\n")
        #expect(weak.status != 0)
        #expect(weak.stderr.contains("password"))
        let noInput = try await ServerProcess.run(["create-admin", "--email", "x@example.com"], environment: environment, input: "")
        #expect(noInput.status != 0)
    }

    @Test func migrateAndStatus() async throws {
        let url = "sqlite:" + (try Self.scratchDirectory().appendingPathComponent("migrate.sqlite").path)
        let environment = Self.environment(database: url)
        let before = try await ServerProcess.run(["migrate", "--status"], environment: environment)
        #expect(before.status == 0)
        #expect(before.stdout.contains("pending  0001_initial_schema"))
        let first = try await ServerProcess.run(["migrate"], environment: environment)
        #expect(first.stdout.contains("applied  0001_initial_schema"))
        let second = try await ServerProcess.run(["migrate"], environment: environment)
        #expect(second.status == 0)
        #expect(second.stdout.contains("nothing to apply"))
        let after = try await ServerProcess.run(["migrate", "--status"], environment: environment)
        #expect(after.stdout.hasPrefix("applied  0001_initial_schema  20"))
    }

    @Test(arguments: [
        ("JWT_SECRET", "short"),
        ("BCRYPT_COST", "99"),
        ("DATABASE_URL", "mysql://nope"),
        ("PORT", "eighty"),
    ])
    func badConfigurationStopsStartUpWithOneLine(variable: String, value: String) async throws {
        var environment = Self.environment(database: "sqlite::memory:")
        environment[variable] = value
        let result = try await ServerProcess.run(["serve"], environment: environment)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.contains(variable) == true, "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }
}

@Suite("Graceful shutdown", .serialized)
struct ShutdownTests {
    @Test func sigtermDrainsThenExitsCleanly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("opencourse-drain-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = try await ServerProcess.serve(environment: [
            "DATABASE_URL": "sqlite:" + directory.appendingPathComponent("drain.sqlite").path,
            "JWT_SECRET": String(decoding: testSecret, as: UTF8.self), "BCRYPT_COST": "4",
            // Long enough for the calls below on a loaded machine: one that reached the end of
            // the drain was cut off there ("I/O on closed channel" in a full local run), and
            // beside two busy loops the three calls took over 6 s.
            "LOG_LEVEL": "warning", "SHUTDOWN_DRAIN_SECONDS": "10", "RATE_LIMIT_RPS": "0",
        ])
        #expect(try await server.call(.get, "/ready").status == .ok)
        let started = ContinuousClock.now
        server.process.terminate()
        try await Task.sleep(for: .milliseconds(300))
        // Draining: not ready, but everything else is still served, writes included.
        let ready = try await server.call(.get, "/ready")
        #expect(ready.status == .serviceUnavailable)
        #expect(ready.isProblem)
        #expect(try await server.call(.get, "/health").status == .ok)
        let registered = try await server.call(.post, "/api/v1/auth/register", json: ["email": "late@example.com", "password": "password123"])
        #expect(registered.status == .created)
        #expect(await server.process.exitStatus() == 0)
        #expect(ContinuousClock.now - started >= .seconds(10))
    }

    /// PostgreSQL unreachable at start: `serve` waits in its start-up migration. A SIGTERM then
    /// ends the wait and exits cleanly, skipping the drain (nothing was served). Before, it waited
    /// out drain and shutdown timeout (here 40 s) and exited with a pool error.
    @Test func sigtermWhileStartUpWaitsForTheDatabaseStopsCleanly() async throws {
        let process = Process()
        process.executableURL = ServerProcess.executable
        process.arguments = ["serve", "--port", "\(try ServerProcess.freePort())"]
        process.environment = [
            "DATABASE_URL": "postgres://nobody@127.0.0.1:\(ServerProcess.closedPort)/none",
            "JWT_SECRET": String(decoding: testSecret, as: UTF8.self), "LOG_LEVEL": "notice", "LOG_FORMAT": "text",
            "SHUTDOWN_DRAIN_SECONDS": "20", "SHUTDOWN_TIMEOUT_SECONDS": "20",
        ]
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("opencourse-startup-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The services run (so the signal handlers are in place) once the listener has failed once.
        let deadline = ContinuousClock.now + .seconds(60)
        while try !String(contentsOf: log, encoding: .utf8).contains("catalog change listener lost its connection"),
              ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(process.isRunning)
        let signalled = ContinuousClock.now
        process.terminate()
        let status = await process.exitStatus()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(status == 0, "\(output)")
        #expect(ContinuousClock.now - signalled < .seconds(20), "waited for the drain")
        #expect(output.contains("stopped before the server started"), "\(output)")
        #expect(!output.contains("draining"), "\(output)")
    }
}

/// Collects what a raw connection receives.
private final class FirstBytes: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let bytes = Mutex("")

    var received: String { bytes.withLock { $0 } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes.withLock { $0 += String(buffer: buffer) }
    }
}
