import _ConnectionPoolModule
import PostgresNIO
import SQLiteNIO

/// The few kinds of database failure that the rules above the repositories care about, told
/// apart in this one place for both drivers.
enum DatabaseFailure: Sendable, Equatable {
    case uniqueViolation
    case foreignKeyViolation
    /// The database could not be reached or the connection broke.
    case unavailable
    case other

    init(_ error: any Error) {
        switch error {
        case let error as PSQLError:
            switch error.serverInfo?[.sqlState] {
            case "23505": self = .uniqueViolation
            case "23503": self = .foreignKeyViolation
            case .some(let state) where state.hasPrefix("08") || state.hasPrefix("57P"): self = .unavailable
            case .some: self = .other
            case .none:
                switch error.code {
                case .connectionError, .serverClosedConnection, .poolClosed, .clientClosedConnection,
                     .uncleanShutdown, .sslUnsupported:
                    self = .unavailable
                default:
                    self = .other
                }
            }
        case is DatabaseTimeoutError:
            self = .unavailable
        case is ConnectionPoolError:
            // No connection could be leased: the pool's circuit breaker tripped, or it shut down.
            self = .unavailable
        case let error as SQLiteError:
            switch error.reason {
            case .constraintUniqueFailed, .constraintPrimaryKeyFailed: self = .uniqueViolation
            case .constraintForeignKeyFailed: self = .foreignKeyViolation
            case .constraint where error.message.contains("UNIQUE"): self = .uniqueViolation
            case .constraint where error.message.contains("FOREIGN KEY"): self = .foreignKeyViolation
            case .busy, .busyTimeout, .locked, .cantOpen: self = .unavailable
            default: self = .other
            }
        default:
            self = .other
        }
    }
}
