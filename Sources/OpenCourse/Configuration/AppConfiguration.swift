import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

public enum RateLimitStoreKind: String, Sendable {
    /// Counters in each instance's memory: right for a single instance.
    case memory
    /// Counters in PostgreSQL, shared by every instance on the database.
    case postgres
}

public enum LogFormat: String, Sendable {
    case json
    case text
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
    /// Give back the pages only start-up touched once the server listens (`StartupPages`); `serve`
    /// turns it on, in-process tests leave their own process alone.
    public var releaseStartupPages = false
    /// How often free heap pages go back to the system (`HeapTrimmer`); 0 turns it off.
    public var heapTrimSeconds = 2.0
    /// A connection that sends nothing (not even the rest of a request head) for this long is
    /// closed; 0 keeps connections open for ever.
    public var httpIdleTimeoutSeconds = 75.0
    /// Client connections accepted at once; nil derives it from the descriptor limit.
    public var httpMaxConnections: Int?
    /// Answer `/health` and cached catalog reads on the event loop, in front of Hummingbird
    /// (`FastPathResponder`).
    public var httpFastPath = true
    /// A request that needs the database gets 503 when it has not finished within this time.
    public var databaseTimeoutSeconds = 5.0

    // HTTP edge
    public var hstsEnabled = false
    /// Exact origins allowed cross-origin access; empty means none.
    public var corsAllowedOrigins: [String] = []
    public var maxBodyBytes = 1024 * 1024
    /// Peers whose `X-Forwarded-For` is believed (load balancers).
    public var trustedProxies: [IPRange] = []

    // Rate limits
    public var rateLimitStore = RateLimitStoreKind.memory
    public var rateLimitWindowSeconds = 900
    public var loginMaxFailures = 5
    public var registerMaxPerWindow = 20
    /// Steady requests per second per client; 0 turns the per-client limit off.
    public var rateLimitRPS = 50.0
    public var rateLimitBurst = 100

    // Observability
    public var logFormat = LogFormat.json
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    public var metricsToken: String?

    // Caching
    public var catalogCacheEnabled = true
    public var catalogCacheEntries = 10_000
    public var catalogCacheMaxBytes = 64 << 20
    public var catalogCacheTTLSeconds = 30.0
    /// `Cache-Control: public, max-age=…, stale-while-revalidate=…` on catalog responses.
    public var httpCacheMaxAgeSeconds = 10
    public var httpCacheStaleWhileRevalidateSeconds = 30

    // Lifecycle
    public var shutdownDrainSeconds = 5.0
    public var shutdownTimeoutSeconds = 30.0

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
        if let timeout = value("DB_TIMEOUT_SECONDS") {
            self.databaseTimeoutSeconds = try Self.seconds(timeout, variable: "DB_TIMEOUT_SECONDS", range: 0.1...600)
        }
        if let hsts = value("HSTS_ENABLED") { self.hstsEnabled = try Self.boolean(hsts, variable: "HSTS_ENABLED") }
        if let origins = value("CORS_ALLOWED_ORIGINS") {
            self.corsAllowedOrigins = try Self.list(origins).map { try Self.origin($0, variable: "CORS_ALLOWED_ORIGINS") }
        }
        if let bytes = value("MAX_BODY_BYTES") {
            self.maxBodyBytes = try Self.integer(bytes, variable: "MAX_BODY_BYTES", range: 1024...(1 << 30))
        }
        if let proxies = value("TRUSTED_PROXIES") {
            self.trustedProxies = try Self.list(proxies).map { entry in
                guard let range = IPRange(entry) else {
                    throw ConfigurationError(variable: "TRUSTED_PROXIES", problem: "\"\(entry)\" is not an IP address or CIDR range")
                }
                return range
            }
        }
        if let store = value("RATE_LIMIT_STORE") {
            guard let kind = RateLimitStoreKind(rawValue: store.lowercased()) else {
                throw ConfigurationError(variable: "RATE_LIMIT_STORE", problem: "must be memory or postgres (got \"\(store)\")")
            }
            self.rateLimitStore = kind
        }
        if self.rateLimitStore == .postgres, case .sqlite = self.database {
            throw ConfigurationError(variable: "RATE_LIMIT_STORE", problem: "postgres needs a PostgreSQL DATABASE_URL")
        }
        if let window = value("RATE_LIMIT_WINDOW_SECONDS") {
            self.rateLimitWindowSeconds = try Self.integer(window, variable: "RATE_LIMIT_WINDOW_SECONDS", range: 1...86_400)
        }
        if let failures = value("LOGIN_MAX_FAILURES") {
            self.loginMaxFailures = try Self.integer(failures, variable: "LOGIN_MAX_FAILURES", range: 1...1_000_000)
        }
        if let registrations = value("REGISTER_MAX_PER_WINDOW") {
            self.registerMaxPerWindow = try Self.integer(registrations, variable: "REGISTER_MAX_PER_WINDOW", range: 1...1_000_000)
        }
        if let rps = value("RATE_LIMIT_RPS") {
            self.rateLimitRPS = try Self.seconds(rps, variable: "RATE_LIMIT_RPS", range: 0...1_000_000)
        }
        if let burst = value("RATE_LIMIT_BURST") {
            self.rateLimitBurst = try Self.integer(burst, variable: "RATE_LIMIT_BURST", range: 1...1_000_000)
        }
        if let format = value("LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigurationError(variable: "LOG_FORMAT", problem: "must be json or text (got \"\(format)\")")
            }
            self.logFormat = parsed
        } else {
            self.logFormat = isatty(STDERR_FILENO) == 1 ? .text : .json
        }
        if let token = environment["METRICS_TOKEN"], !token.isEmpty { self.metricsToken = token }
        if let enabled = value("HTTP_FAST_PATH") {
            self.httpFastPath = try Self.boolean(enabled, variable: "HTTP_FAST_PATH")
        }
        if let enabled = value("CATALOG_CACHE_ENABLED") {
            self.catalogCacheEnabled = try Self.boolean(enabled, variable: "CATALOG_CACHE_ENABLED")
        }
        if let entries = value("CATALOG_CACHE_ENTRIES") {
            self.catalogCacheEntries = try Self.integer(entries, variable: "CATALOG_CACHE_ENTRIES", range: 1...10_000_000)
        }
        if let bytes = value("CATALOG_CACHE_MAX_BYTES") {
            self.catalogCacheMaxBytes = try Self.integer(bytes, variable: "CATALOG_CACHE_MAX_BYTES", range: (64 << 10)...(1 << 40))
        }
        if let ttl = value("CATALOG_CACHE_TTL_SECONDS") {
            self.catalogCacheTTLSeconds = try Self.seconds(ttl, variable: "CATALOG_CACHE_TTL_SECONDS", range: 0.001...86_400)
        }
        if let maxAge = value("HTTP_CACHE_MAX_AGE_SECONDS") {
            self.httpCacheMaxAgeSeconds = try Self.integer(maxAge, variable: "HTTP_CACHE_MAX_AGE_SECONDS", range: 0...31_536_000)
        }
        if let stale = value("HTTP_CACHE_STALE_WHILE_REVALIDATE_SECONDS") {
            self.httpCacheStaleWhileRevalidateSeconds = try Self.integer(stale, variable: "HTTP_CACHE_STALE_WHILE_REVALIDATE_SECONDS", range: 0...31_536_000)
        }
        if let connections = value("HTTP_MAX_CONNECTIONS") {
            self.httpMaxConnections = try Self.integer(connections, variable: "HTTP_MAX_CONNECTIONS", range: 1...10_000_000)
        }
        if let idle = value("HTTP_IDLE_TIMEOUT_SECONDS") {
            self.httpIdleTimeoutSeconds = try Self.seconds(idle, variable: "HTTP_IDLE_TIMEOUT_SECONDS", range: 0...86_400)
        }
        if let trim = value("HEAP_TRIM_SECONDS") {
            self.heapTrimSeconds = try Self.seconds(trim, variable: "HEAP_TRIM_SECONDS", range: 0...86_400)
            guard heapTrimSeconds == 0 || heapTrimSeconds >= 0.1 else {
                // Each trim holds the allocator's locks: more often would be a busy loop.
                throw ConfigurationError(variable: "HEAP_TRIM_SECONDS", problem: "must be 0 (off) or at least 0.1")
            }
        }
        if let drain = value("SHUTDOWN_DRAIN_SECONDS") {
            self.shutdownDrainSeconds = try Self.seconds(drain, variable: "SHUTDOWN_DRAIN_SECONDS", range: 0...3600)
        }
        if let timeout = value("SHUTDOWN_TIMEOUT_SECONDS") {
            self.shutdownTimeoutSeconds = try Self.seconds(timeout, variable: "SHUTDOWN_TIMEOUT_SECONDS", range: 0...3600)
        }
    }

    static func seconds(_ raw: String, variable: String, range: ClosedRange<Double>) throws -> Double {
        guard let value = Double(raw), value.isFinite, range.contains(value) else {
            throw ConfigurationError(variable: variable, problem: "must be a number from \(range.lowerBound) to \(range.upperBound) (got \"\(raw)\")")
        }
        return value
    }

    static func boolean(_ raw: String, variable: String) throws -> Bool {
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(variable: variable, problem: "must be true or false (got \"\(raw)\")")
        }
    }

    static func list(_ raw: String) -> [String] {
        raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// An origin is scheme://host[:port], with nothing after it.
    static func origin(_ raw: String, variable: String) throws -> String {
        guard let url = URLComponents(string: raw), let scheme = url.scheme, ["http", "https"].contains(scheme),
              url.host?.isEmpty == false, url.path.isEmpty || url.path == "/", url.query == nil
        else {
            throw ConfigurationError(variable: variable, problem: "\"\(raw)\" is not an origin like https://app.example.com")
        }
        return raw.hasSuffix("/") ? String(raw.dropLast()) : raw
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
