import Foundation
import SQLKit

/// A statement whose text never changes, written once for both databases with `$1`…`$n` where
/// its values go (and `$` nowhere else). On PostgreSQL it becomes a named prepared statement, parsed and planned once
/// per connection instead of on every execution (the hot paths: `GET /users/me`, creating a
/// course, enrolling); on SQLite it runs through SQLKit like any other statement. Statements
/// built from optional filters or paging stay SQLKit queries.
public protocol PreparedStatement {
    /// The statement's text; a constant (PostgreSQL keeps one plan per connection under its name).
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
    static func query(_ values: [StatementValue]) -> SQLQueryString {
        var query: SQLQueryString = ""
        var rest = Substring(sql)
        while let dollar = rest.firstIndex(of: "$") {
            query += "\(unsafeRaw: String(rest[..<dollar]))"
            let digits = rest[rest.index(after: dollar)...].prefix { $0.isASCII && $0.isNumber }
            guard let number = Int(digits), values.indices.contains(number - 1) else {
                preconditionFailure("\(Self.self): no value for $\(digits)")
            }
            switch values[number - 1] {
            case .uuid(let value): query += "\(bind: value)"
            case .text(let value): query += "\(bind: value)"
            case .timestamp(let value): query += "\(bind: value)"
            }
            rest = rest[digits.endIndex...]
        }
        query += "\(unsafeRaw: String(rest))"
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
}
