import Foundation
import SQLKit
import Testing
@testable import OpenCourse

@Suite("Migrations")
struct MigrationTests {
    private func withDatabase(_ kind: TestDatabase, _ body: @Sendable (any DatabaseBackend) async throws -> Void) async throws {
        try await kind.withFreshDatabase(poolSize: 4, body)
    }

    @Test(arguments: TestDatabase.allCases)
    func secondRunIsANoOp(database: TestDatabase) async throws {
        try await withDatabase(database) { backend in
            let migrator = try Migrator(database: backend, logger: testLogger)
            let shipped = try MigrationCatalog.load(for: backend.kind).map(\.tag)
            #expect(shipped.first == "0001_initial_schema")
            let pendingBefore = try await migrator.status()
            #expect(pendingBefore.allSatisfy { $0.state == .pending })
            #expect(try await migrator.migrate() == shipped)
            #expect(try await migrator.migrate() == [])
            let status = try await migrator.status()
            #expect(status.map(\.tag) == shipped)
            #expect(status.allSatisfy { if case .applied = $0.state { true } else { false } })
            let roles = try await backend.sql.raw("SELECT name FROM roles ORDER BY id").all().map { try $0.decode(column: "name", as: String.self) }
            #expect(roles == ["student", "instructor", "admin"])
            let recorded = try await backend.sql.raw("SELECT COUNT(*) AS n FROM schema_migrations").first()
            #expect(try recorded?.decode(column: "n", as: Int.self) == shipped.count)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func anEditedMigrationIsRefused(database: TestDatabase) async throws {
        try await withDatabase(database) { backend in
            let shipped = try MigrationCatalog.load(for: backend.kind)
            try await Migrator(database: backend, migrations: shipped, logger: testLogger).migrate()
            var edited = shipped
            edited[0].sql += "\n-- an innocent-looking edit\n"
            let migrator = try Migrator(database: backend, migrations: edited, logger: testLogger)
            await #expect(throws: MigrationError.edited(tag: "0001_initial_schema")) { try await migrator.migrate() }
            await #expect(throws: MigrationError.edited(tag: "0001_initial_schema")) { _ = try await migrator.status() }
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func laterMigrationsApplyInJournalOrder(database: TestDatabase) async throws {
        try await withDatabase(database) { backend in
            var migrations = try MigrationCatalog.load(for: backend.kind)
            try await Migrator(database: backend, migrations: migrations, logger: testLogger).migrate()
            let next = (migrations.last?.version ?? 0) + 1
            migrations.append(Migration(version: next, tag: "9998_test", sql: "CREATE TABLE extra (id INTEGER PRIMARY KEY)\n--> statement-breakpoint\nINSERT INTO extra (id) VALUES (1)"))
            migrations.append(Migration(version: next + 1, tag: "9999_broken", sql: "INSERT INTO extra (id) VALUES (2)\n--> statement-breakpoint\nTHIS IS NOT SQL"))
            let migrator = try Migrator(database: backend, migrations: migrations, logger: testLogger)
            await #expect(throws: (any Error).self) { try await migrator.migrate() }
            // The first new one landed; the broken one failed as a whole: its first statement was rolled back with it.
            let status = try await migrator.status()
            let applied = status.map { if case .applied = $0.state { true } else { false } }
            #expect(applied == Array(repeating: true, count: migrations.count - 1) + [false])
            let rows = try await backend.sql.raw("SELECT COUNT(*) AS n FROM extra").first()
            #expect(try rows?.decode(column: "n", as: Int.self) == 1)
        }
    }

    @Test func concurrentInstancesApplyEachMigrationOnce() async throws {
        let location = try await TestDatabase.postgres.makeLocation()
        let first = try await location.open(poolSize: 2, logger: testLogger)
        let second = try await location.open(poolSize: 2, logger: testLogger)
        let applied = try await first.whileRunning(logger: testLogger) { first in
            try await second.whileRunning(logger: testLogger) { second in
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for backend in [first, second] as [any DatabaseBackend] {
                        group.addTask { try await Migrator(database: backend, logger: testLogger).migrate() }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
            }
        }
        // Between them every migration was applied once (which instance applied which may vary).
        #expect(applied.sorted() == (try MigrationCatalog.load(for: .postgres).map(\.tag)))
    }
}
