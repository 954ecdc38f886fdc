import ConnectionKit
import Crypto
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// A pooled Redis client over hiredis.
///
/// Run it as a `Service`: its `run()` keeps the pool until graceful shutdown, then closes it.
///
/// Commands that neither block their connection nor change its state (``sharesConnection(_:)``: `GET`,
/// `SET`, `EVALSHA`, `XADD`, ...) share a few connections: concurrent callers' commands go
/// in one round trip (``Configuration/sharedConnections``). The others (`BLPOP`, `MULTI`,
/// `SELECT`, ...), and ``withConnection(_:)``, lease an idle pooled connection of their own, each owned
/// by an actor on its own thread. Blocking stream reads use a ``RedisStreamReader`` with its own
/// connection outside the pool (``makeStreamReader(name:)``).
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
        /// The pool's connections, for commands that need a connection of their own.
        public var maximumConnections: Int = 8
        /// The connections every other command shares (pipelined across callers).
        public var sharedConnections: Int = 2
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
    private let shared: SharedConnections<HiredisConnection>
    private let logger: Logger
    /// Script digests learned with `SCRIPT LOAD`, by the script's own digest (``RedisScript/digest``):
    /// looking up 40 characters, not the script's whole source, on every call.
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
        self.shared = SharedConnections(count: configuration.sharedConnections, name: "redis-shared") { _ in
            HiredisConnection(configuration: configuration, commandTimeout: configuration.commandTimeout, logger: logger)
        }
    }

    /// Keeps the pool until graceful shutdown (or cancellation), then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Fails waiting callers, refuses new leases, and closes every connection, readers included.
    public func shutdown() async {
        shared.close()
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

    /// Sends one command: on a shared connection when it may share one, else on a pooled connection.
    /// An error reply is thrown as ``RedisError``.
    @discardableResult
    public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        guard Self.sharesConnection(arguments) else {
            return try await withConnection { try await $0.send(arguments) }
        }
        let reply = try await shared.exchange([arguments])[0]
        if case .error(let message) = reply { throw RedisError(reply: message) }
        return reply
    }

    /// Sends one command (see ``send(_:)-([RedisArgument])``).
    @discardableResult
    public func send(_ arguments: RedisArgument...) async throws -> RedisReply {
        try await send(arguments)
    }

    /// Sends the commands in one round trip, in order and with nothing in between that could see their
    /// intermediate state differently; error replies stay in the result as `.error`.
    public func pipeline(_ commands: [[RedisArgument]]) async throws -> [RedisReply] {
        guard commands.allSatisfy(Self.sharesConnection) else {
            return try await withConnection { try await $0.pipeline(commands) }
        }
        return try await shared.exchange(commands)
    }

    /// Commands a shared connection would not survive, by name: they block it (another caller's command
    /// would wait behind them) or change its state (what other callers' commands mean).
    private static let connectionBound: Set<String> = [
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
        "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SELECT", "AUTH", "HELLO", "RESET", "QUIT", "CLIENT",
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
        "SYNC", "PSYNC", "READONLY", "READWRITE", "DEBUG", "SHUTDOWN",
    ]

    /// True when `arguments` may share a connection with other callers' commands: not a blocking or
    /// state-changing command (``connectionBound``), and not an `XREAD`/`XREADGROUP` with `BLOCK`.
    static func sharesConnection(_ arguments: [RedisArgument]) -> Bool {
        guard let first = arguments.first, first.bytes.count <= 12 else { return true }
        let name = String(decoding: first.bytes, as: UTF8.self).uppercased()
        if name == "XREAD" || name == "XREADGROUP" {
            return !arguments.dropFirst().contains { $0.bytes.count == 5 && String(decoding: $0.bytes, as: UTF8.self).uppercased() == "BLOCK" }
        }
        return !connectionBound.contains(name)
    }

    /// Commands and round trips of the shared connections so far: with concurrent callers, fewer round
    /// trips than commands.
    public var sharedConnectionStatistics: (commands: Int, roundTrips: Int) {
        shared.statistics
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
        let digest = try await digest(of: script)
        do {
            return try await send(Self.evalsha(digest, keys: keys, arguments: arguments))
        } catch let error as RedisError where error.code == .noScript {
            let reloaded = try await load(script)
            return try await send(Self.evalsha(reloaded, keys: keys, arguments: arguments))
        }
    }

    /// Runs several scripts in one round trip, in order, each as ``evaluate(_:keys:arguments:)`` would: a
    /// script the server no longer knows (`NOSCRIPT`) is loaded and run again on its own, after the others,
    /// so only scripts whose effects are independent belong together. One result per call, an error reply
    /// as the ``RedisError`` of its result; a connection failure throws for all of them.
    public func evaluate(_ calls: [RedisScriptCall]) async throws -> [Result<RedisReply, RedisError>] {
        var commands: [[RedisArgument]] = []
        for call in calls {
            commands.append(Self.evalsha(try await digest(of: call.script), keys: call.keys, arguments: call.arguments))
        }
        var results: [Result<RedisReply, RedisError>] = []
        for (call, reply) in zip(calls, try await pipeline(commands)) {
            guard case .error(let message) = reply else {
                results.append(.success(reply))
                continue
            }
            let error = RedisError(reply: message)
            guard error.code == .noScript else {
                results.append(.failure(error))
                continue
            }
            do {
                results.append(.success(try await evaluate(call.script, keys: call.keys, arguments: call.arguments)))
            } catch let error as RedisError {
                results.append(.failure(error))
            }
        }
        return results
    }

    /// Runs `first` as ``evaluate(_:keys:arguments:)`` does and, when `followUp` makes a call of its reply,
    /// runs that call right after it on the same shared connection, in its next round trip, without
    /// resuming the caller in between (``SharedConnections/exchange(_:then:)``): for a step that must see
    /// the outcome of the one before and cannot share its script (another hash slot), one hand-off to and
    /// from the caller instead of two.
    ///
    /// `followUp` runs on the connection's thread between round trips, so it must be quick, never block,
    /// and give the same answer for the same reply: when the follow-up cannot go on the connection (its
    /// script is not loaded yet, or the server lost its scripts), it is asked again here and the call runs
    /// with ``evaluate(_:keys:arguments:)``. An error reply of `first`, or its connection's failure,
    /// throws; the follow-up's error reply or failure is its result's.
    public func evaluate(
        _ first: RedisScriptCall, then followUp: @escaping @Sendable (RedisReply) -> RedisScriptCall?
    ) async throws -> (first: RedisReply, then: Result<RedisReply, any Error>?) {
        let command = Self.evalsha(try await digest(of: first.script), keys: first.keys, arguments: first.arguments)
        let followed = try await shared.exchange([command]) { replies in
            guard let reply = replies.first, !reply.isError, let call = followUp(reply),
                let digest = self.scriptDigests.withLock({ $0[call.script.digest] })
            else { return nil }
            return [Self.evalsha(digest, keys: call.keys, arguments: call.arguments)]
        }
        var reply = followed.first[0]
        if case .error(let message) = reply {
            let error = RedisError(reply: message)
            guard error.code == .noScript else { throw error }
            reply = try await evaluate(first.script, keys: first.keys, arguments: first.arguments)
        } else if case .success(let replies)? = followed.then {
            guard case .error(let message) = replies[0] else { return (reply, .success(replies[0])) }
            let error = RedisError(reply: message)
            guard error.code == .noScript else { return (reply, .failure(error)) }
        } else if case .failure(let error)? = followed.then {
            return (reply, .failure(error))
        }
        // The follow-up did not go on the connection (not asked for, its script unknown or lost).
        guard let call = followUp(reply) else { return (reply, nil) }
        do {
            return (reply, .success(try await evaluate(call.script, keys: call.keys, arguments: call.arguments)))
        } catch {
            return (reply, .failure(error))
        }
    }

    /// The digest the server knows `script` by: remembered, or loaded now.
    private func digest(of script: RedisScript) async throws -> String {
        if let known = scriptDigests.withLock({ $0[script.digest] }) { return known }
        return try await load(script)
    }

    private func load(_ script: RedisScript) async throws -> String {
        let reply = try await send(["SCRIPT", "LOAD", RedisArgument(script.source)])
        guard let digest = reply.string else { throw RedisError.unexpected(reply, expected: "a script digest") }
        scriptDigests.withLock { $0[script.digest] = digest }
        return digest
    }

    private static func evalsha(_ digest: String, keys: [RedisArgument], arguments: [RedisArgument]) -> [RedisArgument] {
        ["EVALSHA", RedisArgument(digest), RedisArgument(keys.count)] + keys + arguments
    }
}

/// A Lua script, run with ``RedisClient/evaluate(_:keys:arguments:)``.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// The SHA-1 of the source in lower-case hex, which is what Redis knows a script by (`EVALSHA`),
    /// computed once here.
    public let digest: String

    public init(_ source: String) {
        self.source = source
        self.digest = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
        }.joined()
    }
}

/// One script with its keys and arguments, for ``RedisClient/evaluate(_:)`` (several in one round trip).
public struct RedisScriptCall: Sendable {
    public let script: RedisScript
    public let keys: [RedisArgument]
    public let arguments: [RedisArgument]
    public init(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) {
        self.script = script
        self.keys = keys
        self.arguments = arguments
    }
}
