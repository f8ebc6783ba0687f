import Foundation
import SQLKit

/// A statement whose text never changes, written once for both databases with `$1`…`$n` where
/// its values go (and `$` nowhere else). On PostgreSQL it becomes a named prepared statement:
/// parsed once per connection instead of on every execution, and planned once PostgreSQL has
/// settled on a generic plan (the hot paths: `GET /users/me`, creating a course, enrolling). On
/// SQLite it runs through SQLKit like any other statement. Statements built from optional
/// filters or paging stay SQLKit queries.
///
/// PostgreSQL fixes each `$n`'s type at the first execution on a connection, from the value
/// bound then; a NULL leaves it to the context. A nullable value whose context does not tell its
/// type needs a cast in the text (`CAST($2 AS TEXT)`, which SQLite accepts too).
public protocol PreparedStatement: SendableMetatype {
    /// The statement's text; a constant (PostgreSQL keeps it per connection under the type's name).
    static var sql: String { get }
}

/// A value bound to a prepared statement.
public enum StatementValue: Sendable {
    case uuid(UUID)
    case text(String?)
    case timestamp(Date)
}

extension PreparedStatement {
    /// The statement as a SQLKit query with the values bound in the dialect's own way.
    /// Every value must be used: PostgreSQL refuses extra ones, and SQLite would ignore them.
    static func query(_ values: [StatementValue]) -> SQLQueryString {
        var query: SQLQueryString = ""
        var used = Set<Int>()
        var rest = Substring(sql)
        while let dollar = rest.firstIndex(of: "$") {
            query += "\(unsafeRaw: String(rest[..<dollar]))"
            let digits = rest[rest.index(after: dollar)...].prefix { $0.isASCII && $0.isNumber }
            guard let number = Int(digits), values.indices.contains(number - 1) else {
                preconditionFailure("\(Self.self): no value for $\(digits)")
            }
            used.insert(number)
            switch values[number - 1] {
            case .uuid(let value): query += "\(bind: value)"
            case .text(let value): query += "\(bind: value)"
            case .timestamp(let value): query += "\(bind: value)"
            }
            rest = rest[digits.endIndex...]
        }
        query += "\(unsafeRaw: String(rest))"
        precondition(used.count == values.count, "\(Self.self): \(values.count) values for \(used.count) placeholders")
        return query
    }
}

extension DatabaseBackend {
    /// Backends without prepared statements of their own (SQLite) run them through SQLKit.
    public func run<Statement: PreparedStatement>(
        _ statement: Statement.Type, _ values: [StatementValue]
    ) async throws -> [any SQLRow] {
        try await sql.raw(Statement.query(values)).all()
    }

    /// Backends without batches (SQLite: one process, no round trips) run each request alone.
    public func runBatched<Statement: BatchableStatement>(
        _ statement: Statement.Type, _ values: [StatementValue]
    ) async throws -> [any SQLRow] {
        try await run(statement, values)
    }
}
