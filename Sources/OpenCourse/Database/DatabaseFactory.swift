import Logging
import NIOSSL
import PostgresNIO

extension DatabaseLocation {
    /// How long an unused pooled PostgreSQL connection stays open; also how long the memory of
    /// each idle transition's timer is kept (see `open`).
    static let idleTimeout = Duration.seconds(5)

    /// Opens the configured database. PostgreSQL connects lazily once its client runs.
    public func open(
        poolSize: Int, timeoutSeconds: Double = 5, metrics: AppMetrics? = nil, logger: Logger
    ) async throws -> any DatabaseBackend {
        switch self {
        case .sqlite(let path):
            return try await SQLiteBackend.open(path: path, logger: logger)
        case .postgres(let settings):
            var configuration = PostgresClient.Configuration(
                host: settings.host, port: settings.port, username: settings.username,
                password: settings.password, database: settings.database, tls: .disable
            )
            switch settings.tls {
            case .disable: configuration.tls = .disable
            case .prefer: configuration.tls = .prefer(.makeClientConfiguration())
            case .require: configuration.tls = .require(.makeClientConfiguration())
            }
            // No keep-alive queries, and idle connections close after a few seconds. PostgresNIO
            // arms its keep-alive and idle-timeout timers each time a connection goes idle, each a
            // task sleeping on `Task.sleep`, and Swift frees a cancelled sleep's memory only at its
            // deadline (swiftlang/swift#60441): with the defaults (30 s, 60 s) every query at a
            // load below the pool's concurrency kept ~1.5 KB for a minute (45 MiB after 28,000
            // requests in 5 s). A fixed-size pool (minimum = maximum) would arm none, but
            // PostgresNIO 1.33 then traps when a request waits while connections are being
            // replaced after PostgreSQL restarts (`createNewDemandConnectionIfPossible`'s
            // precondition), so the minimum stays 0 and the idle timeout bounds what is kept.
            configuration.options.maximumConnections = poolSize
            configuration.options.minimumConnections = 0
            configuration.options.keepAliveBehavior = nil
            configuration.options.connectionIdleTimeout = Self.idleTimeout
            configuration.options.connectTimeout = .milliseconds(Int64(timeoutSeconds * 1000))
            return PostgresBackend(
                settings: settings, configuration: configuration, timeoutSeconds: timeoutSeconds, metrics: metrics, logger: logger
            )
        }
    }
}

extension PostgresSettings {
    /// Settings for a single connection outside the pool (the catalog change listener).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch self.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        return PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls
        )
    }
}
