import ConnectionKit
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// A pooled Redis client over hiredis.
///
/// Run it as a `Service`: its `run()` keeps the pool until graceful shutdown, then closes it. Commands
/// lease an idle connection, each owned by an actor on its own thread. Blocking stream reads use a
/// ``RedisStreamReader`` with its own connection outside the pool (``makeStreamReader(name:)``).
public final class RedisClient: Sendable, Service {
    /// Where to connect and how the pool behaves.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var user: String?
        public var password: String?
        public var database: Int
        public var connectTimeout: Duration = .seconds(2)
        /// How long one command may take before its connection is considered lost.
        public var commandTimeout: Duration = .seconds(5)
        public var maximumConnections: Int = 8
        /// How long a caller waits for a free connection before failing with `.poolExhausted`.
        public var maximumPoolWait: Duration = .seconds(5)

        /// Parses `redis://[user:password@]host[:port][/database]`.
        public init(url: String) throws(RedisError) {
            guard let components = URLComponents(string: url), components.scheme == "redis",
                let host = components.host, !host.isEmpty
            else {
                throw RedisError(code: .invalidConfiguration, message: "invalid Redis URL: expected redis://host:port[/db]")
            }
            self.host = host
            self.port = components.port ?? 6379
            self.user = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            self.password = components.password.flatMap { $0.removingPercentEncoding }
            let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard let database = path.isEmpty ? 0 : Int(path), database >= 0 else {
                throw RedisError(code: .invalidConfiguration, message: "invalid Redis URL: the path must be a database number")
            }
            self.database = database
        }
    }

    public let configuration: Configuration
    private let pool: ConnectionPool<RedisConnection>
    private let logger: Logger
    /// Script digests learned with `SCRIPT LOAD`, by source.
    private let scriptDigests = Mutex<[String: String]>([:])
    private let readers = Mutex<[RedisStreamReader]>([])

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.pool = ConnectionPool(
            configuration: .init(maximumConnections: configuration.maximumConnections, maximumWait: configuration.maximumPoolWait, name: "redis")
        ) { index in
            RedisConnection(configuration: configuration, commandTimeout: configuration.commandTimeout, logger: logger, name: "redis-\(index)")
        }
    }

    /// Keeps the pool until graceful shutdown (or cancellation), then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Fails waiting callers, refuses new leases, and closes every connection, readers included.
    public func shutdown() async {
        for connection in pool.close() {
            await connection.close()
        }
        for reader in readers.withLock({ $0 }) {
            await reader.close()
        }
    }

    /// Runs `body` with an idle connection leased for its duration.
    public func withConnection<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection: RedisConnection
        do {
            connection = try await pool.lease()
        } catch let error as ConnectionPoolExhausted {
            throw RedisError(error)
        }
        defer { pool.release(connection) }
        return try await body(connection)
    }

    /// Sends one command on a pooled connection.
    @discardableResult
    public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        try await withConnection { try await $0.send(arguments) }
    }

    /// Sends one command on a pooled connection.
    @discardableResult
    public func send(_ arguments: RedisArgument...) async throws -> RedisReply {
        try await send(arguments)
    }

    /// Sends the commands in one round trip; error replies stay in the result as `.error`.
    public func pipeline(_ commands: [[RedisArgument]]) async throws -> [RedisReply] {
        try await withConnection { try await $0.pipeline(commands) }
    }

    /// A reader with its own connection (outside the pool) for blocking stream reads. Its socket timeout
    /// allows a blocking call of up to `maximumBlock` plus the command timeout.
    public func makeStreamReader(name: String, maximumBlock: Duration = .seconds(1)) -> RedisStreamReader {
        let reader = RedisStreamReader(
            connection: RedisConnection(
                configuration: configuration,
                commandTimeout: maximumBlock + configuration.commandTimeout,
                logger: logger,
                name: "redis-reader-\(name)"
            ),
            maximumBlock: maximumBlock
        )
        readers.withLock { $0.append(reader) }
        return reader
    }

    // MARK: Scripts

    /// Runs a Lua script by digest (`EVALSHA`), loading it first when the server does not know it,
    /// including after `SCRIPT FLUSH` or a restart (`NOSCRIPT`).
    public func evaluate(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws -> RedisReply {
        try await withConnection { connection in
            let known = scriptDigests.withLock { $0[script.source] }
            let digest: String
            if let known {
                digest = known
            } else {
                digest = try await load(script, on: connection)
            }
            do {
                return try await connection.send(Self.evalsha(digest, keys: keys, arguments: arguments))
            } catch let error as RedisError where error.code == .noScript {
                let reloaded = try await load(script, on: connection)
                return try await connection.send(Self.evalsha(reloaded, keys: keys, arguments: arguments))
            }
        }
    }

    private func load(_ script: RedisScript, on connection: RedisConnection) async throws -> String {
        let reply = try await connection.send(["SCRIPT", "LOAD", RedisArgument(script.source)])
        guard let digest = reply.string else { throw RedisError.unexpected(reply, expected: "a script digest") }
        scriptDigests.withLock { $0[script.source] = digest }
        return digest
    }

    private static func evalsha(_ digest: String, keys: [RedisArgument], arguments: [RedisArgument]) -> [RedisArgument] {
        ["EVALSHA", RedisArgument(digest), RedisArgument(keys.count)] + keys + arguments
    }
}

/// A Lua script, run with ``RedisClient/evaluate(_:keys:arguments:)``.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public init(_ source: String) { self.source = source }
}
