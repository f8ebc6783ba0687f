import Foundation
import Logging
import PostgresNIO

/// A configuration value that cannot be used; stops start-up with one line naming the variable.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let variable: String
    public let problem: String

    public var description: String { "\(variable): \(problem)" }
}

/// Where the data lives.
public enum DatabaseLocation: Sendable, Equatable {
    /// A file path, or ":memory:" for a private in-memory database.
    case sqlite(path: String)
    case postgres(PostgresSettings)
}

public struct PostgresSettings: Sendable, Equatable {
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String?
    public var tls: TLSMode
}

/// Everything the service reads from its environment, validated.
public struct AppConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var logLevel = Logger.Level.info
    public var database = DatabaseLocation.sqlite(path: "opencourse.sqlite")
    /// The HS256 key; nil means "generate a random one at start-up".
    public var jwtSecret: [UInt8]?
    public var jwtLifetimeSeconds = 3600
    public var bcryptCost = 12
    public var databasePoolSize = 10
    /// Apply pending migrations before serving.
    public var migrateOnStart = true

    public init() {}

    static let minimumSecretBytes = 32
    static let bcryptCosts = 4...31

    /// Reads the documented environment variables; anything unset keeps its default.
    public init(environment: [String: String]) throws {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        if let host = value("HOST") { self.host = host }
        if let port = value("PORT") { self.port = try Self.integer(port, variable: "PORT", range: 0...65535) }
        if let level = value("LOG_LEVEL") { self.logLevel = try Self.logLevel(level, variable: "LOG_LEVEL") }
        if let url = value("DATABASE_URL") { self.database = try Self.database(url, variable: "DATABASE_URL") }
        if let secret = environment["JWT_SECRET"], !secret.isEmpty {
            guard secret.utf8.count >= Self.minimumSecretBytes else {
                throw ConfigurationError(variable: "JWT_SECRET", problem: "must be at least \(Self.minimumSecretBytes) bytes (got \(secret.utf8.count))")
            }
            self.jwtSecret = Array(secret.utf8)
        }
        if let ttl = value("JWT_TTL_SECONDS") {
            self.jwtLifetimeSeconds = try Self.integer(ttl, variable: "JWT_TTL_SECONDS", range: 1...31_536_000)
        }
        if let cost = value("BCRYPT_COST") {
            self.bcryptCost = try Self.integer(cost, variable: "BCRYPT_COST", range: Self.bcryptCosts)
        }
        if let pool = value("DB_POOL_SIZE") {
            self.databasePoolSize = try Self.integer(pool, variable: "DB_POOL_SIZE", range: 1...1000)
        }
    }

    static func integer(_ raw: String, variable: String, range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(variable: variable, problem: "must be an integer from \(range.lowerBound) to \(range.upperBound) (got \"\(raw)\")")
        }
        return value
    }

    static func logLevel(_ raw: String, variable: String) throws -> Logger.Level {
        let name = raw.lowercased() == "warn" ? "warning" : raw.lowercased()
        guard let level = Logger.Level(rawValue: name) else {
            let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(variable: variable, problem: "must be one of \(names) (got \"\(raw)\")")
        }
        return level
    }

    /// `postgres://` or `postgresql://` URLs, `sqlite:PATH` and `sqlite::memory:`.
    static func database(_ raw: String, variable: String) throws -> DatabaseLocation {
        if raw.hasPrefix("sqlite:") {
            var path = String(raw.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else {
                throw ConfigurationError(variable: variable, problem: "sqlite: needs a path, as in sqlite:opencourse.sqlite or sqlite::memory:")
            }
            return .sqlite(path: path)
        }
        let invalid = ConfigurationError(
            variable: variable,
            problem: "must be postgres://USER:PASSWORD@HOST:PORT/DATABASE, sqlite:PATH or sqlite::memory:"
        )
        guard let url = URLComponents(string: raw), let scheme = url.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql"
        else { throw invalid }
        guard let host = url.host, !host.isEmpty else {
            throw ConfigurationError(variable: variable, problem: "the PostgreSQL URL needs a host")
        }
        var tls = PostgresSettings.TLSMode.disable
        for item in url.queryItems ?? [] where item.name == "sslmode" {
            switch item.value ?? "" {
            case "disable": tls = .disable
            case "prefer", "allow": tls = .prefer
            case "require", "verify-ca", "verify-full": tls = .require
            default:
                throw ConfigurationError(variable: variable, problem: "sslmode must be disable, prefer or require (got \"\(item.value ?? "")\")")
            }
        }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        return .postgres(PostgresSettings(
            host: host,
            port: url.port ?? 5432,
            username: url.user ?? "postgres",
            password: url.password,
            database: database.isEmpty ? nil : database,
            tls: tls
        ))
    }
}
