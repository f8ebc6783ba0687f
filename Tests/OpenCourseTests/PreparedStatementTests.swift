import Foundation
import SQLKit
import Testing
@testable import OpenCourse

@Suite("Prepared statements")
struct PreparedStatementTests {
    enum OutOfOrder: PreparedStatement {
        static let sql = "SELECT $2 AS b, $1 AS a, $1 AS again"
    }

    /// One pooled connection, so a statement's second run is on the connection of its first.
    private func withDatabase(_ kind: TestDatabase, _ body: @Sendable (any DatabaseBackend) async throws -> Void) async throws {
        let backend = try await kind.makeLocation().open(poolSize: 1, logger: testLogger)
        try await backend.whileRunning(logger: testLogger) { try await body($0) }
    }

    @Test(arguments: TestDatabase.allCases)
    func valuesGoWhereTheirNumbersAre(database: TestDatabase) async throws {
        try await withDatabase(database) { backend in
            for (first, second) in [("one", "two"), ("uno", "dos")] {
                let rows = try await backend.run(OutOfOrder.self, [.text(first), .text(second)])
                #expect(rows.count == 1)
                let row = try #require(rows.first)
                #expect(try row.decode(column: "a", as: String.self) == first)
                #expect(try row.decode(column: "b", as: String.self) == second)
                #expect(try row.decode(column: "again", as: String.self) == first)
            }
        }
    }

    /// PostgresNIO remembers a failed preparation for the life of the connection; a request that
    /// arrives before the migrations must not leave the statement broken once they have run.
    @Test(arguments: TestDatabase.allCases)
    func aStatementThatFailedBeforeTheMigrationsWorksAfterThem(database: TestDatabase) async throws {
        try await withDatabase(database) { backend in
            let users = SQLUserRepository(database: backend)
            await #expect(throws: (any Error).self) { try await users.find(id: UUID()) }
            try await Migrator(database: backend, logger: testLogger).migrate()
            let (id, now) = RecordStamp.next()
            let user = User(
                id: id, email: "prepared-\(id.uuidString.prefix(8).lowercased())@example.com",
                passwordHash: "not-a-hash", name: "Prepared", role: .student, createdAt: now, updatedAt: now
            )
            _ = try await users.create(user)
            #expect(try await users.find(id: id) == user)
            #expect(try await users.find(email: user.email) == user)
        }
    }
}
