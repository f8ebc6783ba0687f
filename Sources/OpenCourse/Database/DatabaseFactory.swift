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
            configuration.options.maximumConnections = poolSize
            configuration.options.minimumConnections = 0
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
