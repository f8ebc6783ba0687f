import Foundation
import SQLKit

/// Users in PostgreSQL or SQLite: the SQL below is portable between both dialects.
public struct SQLUserRepository: UserRepository {
    let database: any DatabaseBackend

    public init(database: any DatabaseBackend) {
        self.database = database
    }

    private static let columns = "id, email, password_hash, name, role, created_at, updated_at"

    public func create(_ user: User) async throws -> User {
        try await database.mapFailures {
            try await database.sql.raw("""
                INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
                VALUES (\(bind: user.id), \(bind: user.email), \(bind: user.passwordHash), \(bind: user.name),
                        \(bind: user.role.rawValue), \(bind: user.createdAt), \(bind: user.updatedAt))
                """).run()
        }
        return user
    }

    enum UserByID: BatchableStatement {
        static let sql = "SELECT \(SQLUserRepository.columns) FROM users WHERE id = $1"
        static let batchSQL = "SELECT \(SQLUserRepository.columns) FROM users WHERE id = ANY($1::uuid[])"
        static let keyColumn = "id"
    }

    enum UserByEmail: PreparedStatement {
        static let sql = "SELECT \(SQLUserRepository.columns) FROM users WHERE email = $1"
    }

    public func find(id: UUID) async throws -> User? {
        try await database.runBatched(UserByID.self, [.uuid(id)]).first.map(Self.user(from:))
    }

    public func find(email: String) async throws -> User? {
        try await database.run(UserByEmail.self, [.text(email)]).first.map(Self.user(from:))
    }

    public func update(_ user: User) async throws -> User? {
        try await database.mapFailures {
            try await database.sql.raw("""
                UPDATE users SET email = \(bind: user.email), password_hash = \(bind: user.passwordHash),
                    name = \(bind: user.name), role = \(bind: user.role.rawValue), updated_at = \(bind: user.updatedAt)
                WHERE id = \(bind: user.id)
                RETURNING \(unsafeRaw: Self.columns)
                """).first().map(Self.user(from:))
        }
    }

    public func upsertAdmin(_ candidate: User) async throws -> (user: User, created: Bool) {
        // One statement, so two operators running the command at once cannot both insert.
        let row = try await database.mapFailures {
            try await database.sql.raw("""
                INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
                VALUES (\(bind: candidate.id), \(bind: candidate.email), \(bind: candidate.passwordHash),
                        \(bind: candidate.name), 'admin', \(bind: candidate.createdAt), \(bind: candidate.updatedAt))
                ON CONFLICT (email) DO UPDATE SET role = 'admin', password_hash = excluded.password_hash,
                    updated_at = excluded.updated_at
                RETURNING \(unsafeRaw: Self.columns)
                """).first()
        }
        guard let row else { throw RepositoryError.missingReference }
        let user = try Self.user(from: row)
        return (user, user.id == candidate.id)
    }

    static func user(from row: any SQLRow) throws -> User {
        let roleName = try row.decode(column: "role", as: String.self)
        return User(
            id: try row.decode(column: "id", as: UUID.self),
            email: try row.decode(column: "email", as: String.self),
            passwordHash: try row.decode(column: "password_hash", as: String.self),
            name: try row.decode(column: "name", as: String?.self),
            role: Role(rawValue: roleName) ?? .student,
            createdAt: Timestamp.normalized(try row.decode(column: "created_at", as: Date.self)),
            updatedAt: Timestamp.normalized(try row.decode(column: "updated_at", as: Date.self))
        )
    }
}

extension DatabaseBackend {
    /// Runs a write, turning constraint violations into `RepositoryError`s; other errors pass through.
    func mapFailures<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch {
            switch DatabaseFailure(error) {
            case .uniqueViolation: throw RepositoryError.duplicate
            case .foreignKeyViolation: throw RepositoryError.missingReference
            case .unavailable, .other: throw error
            }
        }
    }
}
