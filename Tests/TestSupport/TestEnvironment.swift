import Foundation
import Logging
import Postgres
import Redis

/// The servers `scripts/test` started, read from the environment. Tests that need them fail with a clear
/// message (never skip silently) when run outside `scripts/test`.
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public let variable: String
        public var description: String { "\(variable) is not set: run the tests through scripts/test, which starts the servers" }
    }

    public static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { throw Missing(variable: name) }
        return value
    }

    /// A superuser URL of the shared Postgres (suites create their own databases).
    public static func databaseURL() throws -> String { try value("DATABASE_URL") }
    /// The shared Redis. Suites keep to their own keys and never flush it.
    public static func redisURL() throws -> String { try value("REDIS_URL") }
    /// Where the built executables are.
    public static func binDirectory() throws -> String { try value("SERVICE_BIN_DIR") }

    public static let logger: Logger = {
        var logger = Logger(label: "tests")
        logger.logLevel = .warning
        return logger
    }()
}

/// Creates a fresh database per suite on the shared test server.
public enum TestDatabase {
    /// Creates an empty database on the server of `serverURL` (default: the shared test server) and
    /// returns its URL.
    public static func create(prefix: String = "test", on serverURL: String? = nil) async throws -> String {
        let adminURL = try serverURL ?? TestEnvironment.databaseURL()
        let name = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = PostgresClient(configuration: try .init(url: adminURL), logger: TestEnvironment.logger)
        defer { Task { await admin.shutdown() } }
        // Identifiers cannot be bound; the name is made only of a fixed prefix and hex digits.
        try await admin.query("CREATE DATABASE \(unescaped: name)")
        return replacingDatabase(in: adminURL, with: name)
    }

    /// The URL with its database path replaced.
    public static func replacingDatabase(in url: String, with database: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/\(database)"
        return components.string ?? url
    }

    /// A client for `url` with test-friendly defaults.
    public static func client(url: String, connections: Int = 4, maximumWait: Duration = .seconds(10)) throws -> PostgresClient {
        var configuration = try PostgresClient.Configuration(url: url)
        configuration.maximumConnections = connections
        configuration.maximumPoolWait = maximumWait
        return PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
    }
}

extension RedisClient {
    /// A client for the shared test Redis (or `url`).
    public static func forTests(url: String? = nil, connections: Int = 8, maximumWait: Duration = .seconds(10)) throws -> RedisClient {
        var configuration = try RedisClient.Configuration(url: url ?? TestEnvironment.redisURL())
        configuration.maximumConnections = connections
        configuration.maximumPoolWait = maximumWait
        return RedisClient(configuration: configuration, logger: TestEnvironment.logger)
    }
}

extension PostgresClient {
    /// The single integer a `SELECT count(*) ...` returns.
    public func count(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> Int {
        guard let row = try await query(statement, file: file, line: line).first else { return 0 }
        return Int(try row.decode(Int64.self, at: 0))
    }
}

/// Polls `condition` every `interval` until it holds or `timeout` passed; returns whether it held.
public func eventually(
    timeout: Duration = .seconds(15), every interval: Duration = .milliseconds(25), _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
