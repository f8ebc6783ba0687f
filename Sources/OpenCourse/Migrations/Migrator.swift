import Crypto
import Foundation
import Logging
import SQLKit

/// One versioned SQL file of the journal.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var tag: String
    public var sql: String

    public init(version: Int, tag: String, sql: String) {
        self.version = version
        self.tag = tag
        self.sql = sql
    }

    /// SHA-256 of the file, recorded when applied so later edits are noticed.
    public var checksum: String {
        SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Statements are separated as in Drizzle's files, by `--> statement-breakpoint` lines;
    /// a part with nothing but comments is no statement.
    var statements: [String] {
        sql.components(separatedBy: "--> statement-breakpoint")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { part in
                part.split(separator: "\n").contains { line in
                    let code = line.trimmingCharacters(in: .whitespaces)
                    return !code.isEmpty && !code.hasPrefix("--")
                }
            }
    }
}

public enum MigrationError: Error, CustomStringConvertible, Equatable {
    case resourcesMissing(String)
    case journalInvalid(String)
    case edited(tag: String)

    public var description: String {
        switch self {
        case .resourcesMissing(let detail):
            return "migrations: SQL resources not found (\(detail)); ship opencourse_OpenCourse.resources beside the binary"
        case .journalInvalid(let detail):
            return "migrations: journal.json is invalid: \(detail)"
        case .edited(let tag):
            return "migrations: \(tag) was edited after it was applied (checksum differs); restore the file and add a new migration instead"
        }
    }
}

public enum MigrationState: Sendable, Equatable {
    case applied(at: Date)
    case pending
}

/// The migrations shipped with the binary, for one SQL dialect, in journal order.
public enum MigrationCatalog {
    private struct Journal: Decodable {
        struct Entry: Decodable {
            var idx: Int
            var tag: String
        }
        var entries: [Entry]
    }

    public static func load(for kind: DatabaseKind) throws -> [Migration] {
        guard let root = Bundle.module.url(forResource: "SQL", withExtension: nil) else {
            throw MigrationError.resourcesMissing("SQL folder")
        }
        let journalData: Data
        do {
            journalData = try Data(contentsOf: root.appendingPathComponent("journal.json"))
        } catch {
            throw MigrationError.resourcesMissing("journal.json")
        }
        let journal: Journal
        do {
            journal = try JSONDecoder().decode(Journal.self, from: journalData)
        } catch {
            throw MigrationError.journalInvalid("\(error)")
        }
        let versions = journal.entries.map(\.idx)
        guard versions == versions.sorted(), Set(versions).count == versions.count else {
            throw MigrationError.journalInvalid("entries must have increasing, unique idx values")
        }
        return try journal.entries.map { entry in
            let file = root.appendingPathComponent(kind.rawValue).appendingPathComponent(entry.tag + ".sql")
            guard let sql = try? String(contentsOf: file, encoding: .utf8) else {
                throw MigrationError.resourcesMissing("\(kind.rawValue)/\(entry.tag).sql")
            }
            return Migration(version: entry.idx, tag: entry.tag, sql: sql)
        }
    }
}

/// Applies pending migrations, each in its own transaction, recording them in `schema_migrations`.
/// On PostgreSQL a transaction-scoped advisory lock makes instances that start together take turns,
/// so each migration is applied exactly once; SQLite's `BEGIN IMMEDIATE` does the same for files.
public struct Migrator: Sendable {
    let database: any DatabaseBackend
    let migrations: [Migration]
    let logger: Logger

    /// Arbitrary constant naming opencourse's migration lock among advisory locks.
    private static let advisoryLockKey: Int64 = 0x6f70_656e_636f_7572

    public init(database: any DatabaseBackend, migrations: [Migration]? = nil, logger: Logger) throws {
        self.database = database
        self.migrations = try migrations ?? MigrationCatalog.load(for: database.kind)
        self.logger = logger
    }

    /// Applies what is pending; returns the tags applied by this call.
    @discardableResult
    public func migrate() async throws -> [String] {
        try await createJournalTable()
        var appliedNow: [String] = []
        for migration in migrations {
            let applied = try await database.withTransaction { db in
                try await lock(db)
                let recorded = try await appliedChecksums(db)
                try verify(recorded)
                guard recorded[migration.version] == nil else { return false }
                for statement in migration.statements {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw("""
                    INSERT INTO schema_migrations (version, tag, checksum, applied_at)
                    VALUES (\(bind: migration.version), \(bind: migration.tag), \(bind: migration.checksum), \(bind: Timestamp.now()))
                    """).run()
                return true
            }
            if applied {
                logger.info("applied migration", metadata: ["migration": .string(migration.tag)])
                appliedNow.append(migration.tag)
            }
        }
        return appliedNow
    }

    /// Every known migration with its state, in journal order. Also refuses edited files.
    public func status() async throws -> [(tag: String, state: MigrationState)] {
        try await createJournalTable()
        let rows = try await database.sql.raw("SELECT version, checksum, applied_at FROM schema_migrations").all()
        var appliedAt: [Int: Date] = [:]
        var recorded: [Int: String] = [:]
        for row in rows {
            let version = try row.decode(column: "version", as: Int.self)
            recorded[version] = try row.decode(column: "checksum", as: String.self)
            appliedAt[version] = try row.decode(column: "applied_at", as: Date.self)
        }
        try verify(recorded)
        return migrations.map { migration in
            (migration.tag, appliedAt[migration.version].map { .applied(at: $0) } ?? .pending)
        }
    }

    private func createJournalTable() async throws {
        let timestampType = database.kind == .postgres ? "TIMESTAMPTZ" : "REAL"
        try await database.withTransaction { db in
            try await lock(db)
            try await db.raw("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    INTEGER PRIMARY KEY,
                    tag        TEXT NOT NULL,
                    checksum   TEXT NOT NULL,
                    applied_at \(unsafeRaw: timestampType) NOT NULL
                )
                """).run()
        }
    }

    private func lock(_ db: any SQLDatabase) async throws {
        guard database.kind == .postgres else { return }
        try await db.raw("SELECT pg_advisory_xact_lock(\(bind: Self.advisoryLockKey))").run()
    }

    private func appliedChecksums(_ db: any SQLDatabase) async throws -> [Int: String] {
        var recorded: [Int: String] = [:]
        for row in try await db.raw("SELECT version, checksum FROM schema_migrations").all() {
            recorded[try row.decode(column: "version", as: Int.self)] = try row.decode(column: "checksum", as: String.self)
        }
        return recorded
    }

    private func verify(_ recorded: [Int: String]) throws {
        for migration in migrations {
            if let checksum = recorded[migration.version], checksum != migration.checksum {
                throw MigrationError.edited(tag: migration.tag)
            }
        }
    }
}
