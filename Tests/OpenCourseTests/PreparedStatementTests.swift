import Foundation
import SQLKit
import Testing
@testable import OpenCourse

@Suite("Prepared statements")
struct PreparedStatementTests {
    enum OutOfOrder: PreparedStatement {
        static let sql = "SELECT $2 AS b, $1 AS a, $1 AS again"
    }

    enum TenValues: PreparedStatement {
        static let sql = "SELECT $10 AS j, $1 AS a, $2 AS b, $3 AS c, $4 AS d, $5 AS e, $6 AS f, $7 AS g, $8 AS h, $9 AS i"
    }

    enum NullableText: PreparedStatement {
        static let sql = "SELECT CAST($1 AS TEXT) AS value"
    }

    /// Every statement the service prepares.
    static let shipped: [any PreparedStatement.Type] = [
        SQLUserRepository.UserByID.self, SQLUserRepository.UserByEmail.self,
        SQLCourseRepository.InsertCourse.self, SQLCourseRepository.CourseByID.self,
        SQLEnrollmentRepository.InsertEnrollment.self, SQLEnrollmentRepository.EnrollmentOfUserInCourse.self,
        CatalogChangeBroadcaster.Notify.self,
    ]

    private static func name<Statement: PreparedStatement>(_: Statement.Type) -> String { NamedStatement<Statement>.name }
    private static func batchName<Statement: BatchableStatement>(_: Statement.Type) -> String { NamedBatchStatement<Statement>.name }

    /// PostgreSQL keeps prepared statements by name, and cuts names at 63 bytes.
    @Test func statementNamesAreDistinctAndFitPostgreSQL() {
        let batches: [any BatchableStatement.Type] = [
            SQLUserRepository.UserByID.self, SQLCourseRepository.CourseByID.self, SQLCourseRepository.InsertCourse.self,
            SQLEnrollmentRepository.InsertEnrollment.self,
        ]
        let names = Self.shipped.map { Self.name($0) } + batches.map { Self.batchName($0) }
        #expect(Set(names).count == names.count, "\(names)")
        #expect(names.allSatisfy { $0.utf8.count <= 63 && $0.hasPrefix("OpenCourse.") }, "\(names)")
    }

    @Test(arguments: TestDatabase.allCases)
    func tenValuesAndANullFirst(database: TestDatabase) async throws {
        try await withDatabase(database) { backend in
            let letters = "abcdefghij".map(String.init)
            let row = try #require(try await backend.run(TenValues.self, letters.map { .text($0) }).first)
            for letter in letters {
                #expect(try row.decode(column: letter, as: String.self) == letter)
            }
            // The first execution on the connection binds NULL; later ones must still take text.
            for value in [nil, "later", nil, "again"] as [String?] {
                let rows = try await backend.run(NullableText.self, [.text(value)])
                #expect(try rows.first?.decode(column: "value", as: String?.self) == value)
            }
        }
    }

    /// One pooled connection, so a statement's second run is on the connection of its first.
    private func withDatabase(_ kind: TestDatabase, _ body: @Sendable (any DatabaseBackend) async throws -> Void) async throws {
        try await kind.withFreshDatabase(poolSize: 1, body)
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
