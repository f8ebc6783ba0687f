import Logging
import NIOSSL
import PostgresNIO

extension DatabaseLocation {
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
            // A fixed-size pool without keep-alive queries. Otherwise PostgresNIO arms two timers
            // each time a connection goes idle (idle timeout, keep-alive), each a task sleeping
            // on `Task.sleep`, and Swift frees a cancelled sleep's memory only at its deadline
            // (swiftlang/swift#60441): at a load that leaves connections idle between requests,
            // every query kept ~1.5 KB for 30 to 60 s (45 MiB after 28,000 requests in 5 s).
            configuration.options.maximumConnections = poolSize
            configuration.options.minimumConnections = poolSize
            configuration.options.keepAliveBehavior = nil
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
