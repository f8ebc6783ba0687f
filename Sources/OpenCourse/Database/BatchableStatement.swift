import Foundation
import NIOCore
import PostgresNIO

/// A prepared statement that PostgreSQL can run for many requests in one execution
/// (`StatementBatcher`). In `batchSQL` each `$n` is an array holding the n-th value of every
/// request of the batch (`= ANY($1)`, `unnest(...)`); a request's rows are those whose
/// `keyColumn` holds its first value, a UUID. A batch is one statement, so it commits or fails as
/// a whole; a batch that PostgreSQL refuses (anything but an unavailable database) runs again in
/// halves, down to single requests, so each request gets its own outcome.
public protocol BatchableStatement: PreparedStatement {
    static var batchSQL: String { get }
    static var keyColumn: String { get }
}

/// The batch form of a `BatchableStatement` as PostgresNIO prepares it: by name, once per connection.
struct NamedBatchStatement<Statement: BatchableStatement>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { String(reflecting: Statement.self) + ".batch" }
    static var sql: String { Statement.batchSQL }
    /// One entry per request, each with the same number and kinds of values.
    let requests: [[StatementValue]]

    func makeBindings() throws -> PostgresBindings {
        guard let first = requests.first else { return PostgresBindings() }
        var bindings = PostgresBindings(capacity: first.count)
        for column in first.indices {
            let values = requests.map { $0[column] }
            switch first[column] {
            case .uuid:
                bindings.append(try values.map { value in
                    guard case .uuid(let uuid) = value else { throw MixedBatchValues(column: column + 1) }
                    return uuid
                })
            case .timestamp:
                bindings.append(try values.map { value in
                    guard case .timestamp(let date) = value else { throw MixedBatchValues(column: column + 1) }
                    return date
                })
            case .text:
                bindings.append(NullableTextArray(values: try values.map { value in
                    guard case .text(let text) = value else { throw MixedBatchValues(column: column + 1) }
                    return text
                }))
            }
        }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// Requests of one batch gave different kinds of value for one `$n`: a bug in the statement's caller.
struct MixedBatchValues: Error, CustomStringConvertible {
    var column: Int
    var description: String { "the requests of a batch gave different kinds of value for $\(column)" }
}

/// `text[]` that may hold NULLs, which PostgresNIO's array encoding cannot express (it has no
/// optional element type). PostgreSQL's binary array format: dimensions, a has-nulls flag, the
/// element type, the length and lower bound, then each element as a length (-1 for NULL) and bytes.
struct NullableTextArray: PostgresNonThrowingEncodable {
    static var psqlType: PostgresDataType { .textArray }
    static var psqlFormat: PostgresFormat { .binary }
    let values: [String?]

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(values.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(values.contains(nil) ? 1 : 0, as: Int32.self)
        buffer.writeInteger(PostgresDataType.text.rawValue)
        guard !values.isEmpty else { return }
        buffer.writeInteger(Int32(values.count))
        buffer.writeInteger(1, as: Int32.self)
        for value in values {
            guard let value else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            buffer.writeInteger(Int32(value.utf8.count))
            buffer.writeString(value)
        }
    }
}
