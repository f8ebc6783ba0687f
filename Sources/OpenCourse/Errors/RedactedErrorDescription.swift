import PostgresNIO
import SQLiteNIO

/// An error as the service logs it: what failed and why, never the values involved.
///
/// PostgresNIO's `String(reflecting:)` prints a failed statement with its binds (emails,
/// password hashes, titles), the server's detail ("Key (email)=(…) already exists", "Failing row
/// contains (…)") and the bytes of a cell it could not decode. This keeps the kind, the SQLSTATE,
/// the server's message and the names of the schema objects, and drops the rest.
struct RedactedErrorDescription: CustomStringConvertible, Sendable {
    let description: String

    init(_ error: any Error) {
        switch error {
        case let error as PSQLError:
            description = Self.describe(error)
        case let error as PostgresDecodingError:
            description = "PostgresDecodingError(code: \(error.code), column: \(error.columnName), "
                + "targetType: \(error.targetType), postgresType: \(error.postgresType))"
        case let error as SQLiteError:
            // SQLite's messages name the constraint or column, never the values.
            description = "SQLiteError(\(error.reason): \(error.message))"
        case let error as DecodingError:
            // A row that does not decode: postgres-kit and sqlite-kit put the cell's value in the
            // context's description, so only the kind, the type and the column are kept.
            description = Self.describe(error)
        default:
            // Transport, pool and timeout errors: addresses and states, no request data.
            description = String(reflecting: error)
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        let (kind, type, context): (String, Any.Type?, DecodingError.Context?) = switch error {
        case .typeMismatch(let type, let context): ("typeMismatch", type, context)
        case .valueNotFound(let type, let context): ("valueNotFound", type, context)
        case .keyNotFound(let key, let context): ("keyNotFound \(key.stringValue)", nil, context)
        case .dataCorrupted(let context): ("dataCorrupted", nil, context)
        @unknown default: ("unknown", nil, nil)
        }
        let path = context?.codingPath.map(\.stringValue).joined(separator: ".") ?? ""
        return "DecodingError(\(kind)\(type.map { ", type: \($0)" } ?? ""), path: \(path))"
    }

    private static let serverFields: [(label: String, field: PSQLError.ServerInfo.Field)] = [
        ("sqlState", .sqlState), ("severity", .severity), ("schema", .schemaName),
        ("table", .tableName), ("column", .columnName), ("constraint", .constraintName),
    ]

    private static func describe(_ error: PSQLError) -> String {
        var parts = ["code: \(error.code)"]
        if let info = error.serverInfo {
            for (label, field) in serverFields {
                if let value = info[field] { parts.append("\(label): \(value)") }
            }
            // The messages of data exceptions (class 22) quote the offending value.
            if let message = info[.message], info[.sqlState]?.hasPrefix("22") != true {
                parts.append("message: \(message)")
            }
        }
        if let underlying = error.underlying {
            parts.append("underlying: \(RedactedErrorDescription(underlying))")
        }
        return "PSQLError(\(parts.joined(separator: ", ")))"
    }
}
