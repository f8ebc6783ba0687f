import Foundation
import Logging
import Testing
@testable import OpenCourse

@Suite("Configuration")
struct ConfigurationTests {
    @Test func defaults() throws {
        let configuration = try AppConfiguration(environment: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.database == .sqlite(path: "opencourse.sqlite"))
        #expect(configuration.jwtSecret == nil)
        #expect(configuration.jwtLifetimeSeconds == 3600)
        #expect(configuration.bcryptCost == 12)
        #expect(configuration.databasePoolSize == 10)
        #expect(configuration.logLevel == .info)
        #expect(configuration.httpFastPath)
    }

    @Test func readsEveryVariable() throws {
        let configuration = try AppConfiguration(environment: [
            "HOST": "0.0.0.0", "PORT": "9000", "LOG_LEVEL": "WARN", "JWT_SECRET": String(repeating: "k", count: 32),
            "JWT_TTL_SECONDS": "60", "BCRYPT_COST": "4", "DB_POOL_SIZE": "3", "CATALOG_CACHE_MAX_BYTES": "1048576",
            "HTTP_IDLE_TIMEOUT_SECONDS": "2.5", "HTTP_MAX_CONNECTIONS": "500", "HTTP_FAST_PATH": "false",
            "DATABASE_URL": "postgresql://app:p%40ss@db.internal:6543/courses?sslmode=require",
        ])
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 9000)
        #expect(configuration.logLevel == .warning)
        #expect(configuration.jwtSecret?.count == 32)
        #expect(configuration.jwtLifetimeSeconds == 60)
        #expect(configuration.bcryptCost == 4)
        #expect(configuration.databasePoolSize == 3)
        #expect(configuration.catalogCacheMaxBytes == 1 << 20)
        #expect(configuration.httpIdleTimeoutSeconds == 2.5)
        #expect(configuration.httpMaxConnections == 500)
        #expect(!configuration.httpFastPath)
        #expect(configuration.database == .postgres(PostgresSettings(
            host: "db.internal", port: 6543, username: "app", password: "p@ss", database: "courses", tls: .require
        )))
    }

    @Test func databaseURLForms() throws {
        func location(_ url: String) throws -> DatabaseLocation {
            try AppConfiguration(environment: ["DATABASE_URL": url]).database
        }
        #expect(try location("sqlite::memory:") == .sqlite(path: ":memory:"))
        #expect(try location("sqlite:data/app.sqlite") == .sqlite(path: "data/app.sqlite"))
        #expect(try location("sqlite:///var/lib/app.sqlite") == .sqlite(path: "/var/lib/app.sqlite"))
        #expect(try location("postgres://localhost") == .postgres(PostgresSettings(
            host: "localhost", port: 5432, username: "postgres", password: nil, database: nil, tls: .disable
        )))
    }

    @Test(arguments: [
        ("DATABASE_URL", "mysql://localhost/db"),
        ("DATABASE_URL", "postgres:///nohost"),
        ("DATABASE_URL", "sqlite:"),
        ("DATABASE_URL", "postgres://h/db?sslmode=sometimes"),
        ("JWT_SECRET", "too-short"),
        ("BCRYPT_COST", "3"),
        ("BCRYPT_COST", "32"),
        ("BCRYPT_COST", "twelve"),
        ("PORT", "70000"),
        ("PORT", "http"),
        ("JWT_TTL_SECONDS", "0"),
        ("DB_POOL_SIZE", "0"),
        ("LOG_LEVEL", "loud"),
        ("HEAP_TRIM_SECONDS", "0.01"),
        ("HEAP_TRIM_SECONDS", "-1"),
        ("HTTP_FAST_PATH", "sometimes"),
        ("CATALOG_CACHE_MAX_BYTES", "1000"),
        ("CATALOG_CACHE_MAX_BYTES", "64MiB"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "-1"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "forever"),
        ("HTTP_MAX_CONNECTIONS", "0"),
    ])
    func badValuesNameTheirVariable(variable: String, value: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            try AppConfiguration(environment: [variable: value])
        }
        #expect(error.variable == variable)
        #expect(error.description.hasPrefix("\(variable): "))
        #expect(!error.description.contains("\n"))
    }

    @Test func flagsOverrideTheEnvironment() throws {
        let options = try ConfigurationOptions.parse(["--port", "9100", "--database-url", "sqlite::memory:", "--bcrypt-cost", "5"])
        let configuration = try options.resolve(environment: ["PORT": "9000", "BCRYPT_COST": "12", "HOST": "0.0.0.0"])
        #expect(configuration.port == 9100)
        #expect(configuration.bcryptCost == 5)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.database == .sqlite(path: ":memory:"))
        #expect(throws: ConfigurationError.self) {
            try ConfigurationOptions.parse(["--bcrypt-cost", "40"]).resolve(environment: [:])
        }
    }
}
