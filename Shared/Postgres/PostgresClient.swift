internal import CLibPQ
import ConnectionKit
import Logging
import ServiceLifecycle

/// A pooled Postgres client over libpq, shaped like postgres-nio's `PostgresClient`.
///
/// Run it as a `Service` (its `run()` keeps the pool until graceful shutdown, then closes every
/// connection). Access is scoped: ``withConnection(_:)`` leases an idle connection for the body's
/// duration; ``withTransaction(isolation:readOnly:file:line:_:)`` runs a synchronous body inside one transaction on the
/// connection's own thread, so a state change and its outbox row commit together or not at all.
public final class PostgresClient: Sendable, Service {
    /// Where to connect and how the pool behaves.
    ///
    /// The connection settings here (timeouts, keepalives, application name) are defaults: a value the URL
    /// sets itself (`?connect_timeout=3&keepalives_idle=30`) wins. Server options in the URL's `options`
    /// are added after this client's (`TimeZone`, `statement_timeout`), so they win too.
    public struct Configuration: Sendable {
        /// A libpq connection URI (`postgres://user:password@host:port/database?sslmode=...`).
        public var url: String
        /// How long establishing a connection may take (libpq's `connect_timeout`, rounded up to whole
        /// seconds, minimum 2). Default 5 s.
        public var connectTimeout: Duration = .seconds(5)
        /// How long sent data may stay unacknowledged before the connection is dropped (libpq's
        /// `tcp_user_timeout`; Linux). With the keepalives below, a call to a database that vanished from
        /// the network (no reset, no answer) fails within about 10-20 s instead of the kernel's ~15 minutes
        /// of retransmissions. Default 10 s; nil leaves the system default.
        public var tcpUserTimeout: Duration? = .seconds(10)
        /// Idle time before the first TCP keepalive probe (`keepalives_idle`). Default 10 s.
        public var keepalivesIdle: Duration = .seconds(10)
        /// Time between keepalive probes (`keepalives_interval`). Default 5 s.
        public var keepalivesInterval: Duration = .seconds(5)
        /// Unanswered probes before the connection is dead (`keepalives_count`). Default 2.
        public var keepalivesCount: Int = 2
        /// The server-side `statement_timeout` of every session; nil leaves the server default.
        public var statementTimeout: Duration? = .seconds(30)
        /// The most connections the pool opens.
        public var maximumConnections: Int = 8
        /// How long a caller waits for a free connection before failing with `.poolExhausted`.
        public var maximumPoolWait: Duration = .seconds(5)
        /// The connections ``PostgresClient/sharedQuery(_:file:line:)`` shares among callers (opened at
        /// first use, apart from the pool).
        public var sharedConnections: Int = 2
        /// Shown in `pg_stat_activity`.
        public var applicationName: String = "booking-platform"
        /// The pool's name in its metrics (`pool` label), so two pools of one process stay apart.
        public var poolName: String = "postgres"

        /// Validates `url` with libpq's own parser.
        public init(url: String) throws(PostgresError) {
            var errorMessage: UnsafeMutablePointer<CChar>?
            guard let options = PQconninfoParse(url, &errorMessage) else {
                let reason = errorMessage.map { String(cString: $0) } ?? "unparseable"
                if let errorMessage { PQfreemem(errorMessage) }
                throw PostgresError(code: .invalidConfiguration, message: "invalid Postgres URL: \(reason.trimmingTrailingNewlines)")
            }
            defer { PQconninfoFree(options) }
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "port", let value = option.pointee.val {
                    let ports = String(cString: value).split(separator: ",", omittingEmptySubsequences: false)
                    guard ports.allSatisfy({ port in Int(port).map { (1...65535).contains($0) } ?? port.isEmpty }) else {
                        throw PostgresError(code: .invalidConfiguration, message: "invalid Postgres URL: the port must be a number from 1 to 65535")
                    }
                }
                option += 1
            }
            self.url = url
        }
    }

    public let configuration: Configuration
    private let pool: ConnectionPool<PostgresConnection>
    private let shared: SharedConnections<LibPQConnection>
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.pool = ConnectionPool(
            configuration: .init(
                maximumConnections: configuration.maximumConnections,
                maximumWait: configuration.maximumPoolWait,
                name: configuration.poolName
            )
        ) { index in
            PostgresConnection(configuration: configuration, logger: logger, index: index)
        }
        self.shared = SharedConnections(count: configuration.sharedConnections, name: "\(configuration.poolName)-shared", batchLimit: 64) { _ in
            LibPQConnection(configuration: configuration, logger: logger)
        }
    }

    /// Keeps the pool until graceful shutdown (or cancellation), then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Fails waiting callers, refuses new leases, and closes every connection.
    public func shutdown() async {
        shared.close()
        for connection in pool.close() {
            await connection.close()
        }
    }

    /// Runs `body` with an idle connection leased for its duration.
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await pool.lease()
        } catch let error as ConnectionPoolExhausted {
            throw PostgresError(error)
        }
        defer { pool.release(connection) }
        return try await body(connection)
    }

    /// Runs `body` inside one transaction. A thrown error rolls back; see
    /// ``PostgresConnection/withTransaction(isolation:readOnly:file:line:_:)``.
    public func withTransaction<T: Sendable>(
        isolation: PostgresIsolationLevel = .readCommitted,
        readOnly: Bool = false,
        file: String = #fileID,
        line: Int = #line,
        _ body: @Sendable (PostgresTransaction) throws -> T
    ) async throws -> T {
        do {
            return try await withConnection { connection in
                try await connection.withTransaction(isolation: isolation, readOnly: readOnly, file: file, line: line, body)
            }
        } catch let error as PostgresError {
            throw error.calledFrom(file: file, line: line)
        }
    }

    /// Runs one statement on a leased connection. A failure (a full pool too) names the statement and
    /// the call site.
    @discardableResult
    public func query(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        do {
            return try await withConnection { connection in
                try await connection.query(statement, file: file, line: line)
            }
        } catch let error as PostgresError {
            throw error.failing(statement.sql).calledFrom(file: file, line: line)
        }
    }

    /// Runs one short, self-contained statement on a connection it shares with other callers: the
    /// statements callers send at the same time go in one round trip and one transaction (for writes
    /// one WAL flush, for reads one write to the socket); one's error still fails only itself, the
    /// others running again apart (see `LibPQConnection.exchange`). For point reads and single-row writes that take
    /// well under a millisecond; a slow statement holds up the ones sent with it (callers go to the least
    /// busy shared connection). Nothing that relies on the session may run here (`SET`, session advisory
    /// locks, temporary tables): use ``withConnection(_:)``. A failure names the statement and the call site.
    @discardableResult
    public func sharedQuery(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        do {
            return try await shared.exchange([[statement]])[0].get()[0]
        } catch let error as PostgresError {
            throw error.failing(statement.sql).calledFrom(file: file, line: line)
        }
    }

    /// Runs short statements as one transaction on a shared connection: all or nothing, sent together
    /// in one round trip (with whatever other callers send at the same time) and read back in order.
    /// For a transaction whose statements are known before any runs, e.g. writes whose conditions are
    /// decided in SQL (see `OutboxCondition`); the same rules as ``sharedQuery(_:file:line:)`` apply to
    /// each statement. Isolation is read committed: each statement sees what committed before it
    /// started, and what the transactions sent in the same round trip before it wrote (they commit
    /// together with it, or it runs again apart). A transaction-scoped setting or advisory lock may last
    /// until that common commit. A failure names the statement that failed and the call site; nothing
    /// of the batch is kept.
    @discardableResult
    public func sharedTransaction(
        _ statements: [PostgresStatement], file: String = #fileID, line: Int = #line
    ) async throws
        -> [PostgresRows]
    {
        do {
            return try await shared.exchange([statements])[0].get()
        } catch let error as PostgresError {
            throw error.calledFrom(file: file, line: line)
        }
    }

    /// Commands and round trips of the shared connections so far: with concurrent callers, fewer round
    /// trips than statements.
    public var sharedConnectionStatistics: (statements: Int, roundTrips: Int) {
        let statistics = shared.statistics
        return (statistics.commands, statistics.roundTrips)
    }

    /// One round trip on a leased connection (`SELECT 1`): succeeds when the server answers.
    public func ping(file: String = #fileID, line: Int = #line) async throws {
        try await query("SELECT 1", file: file, line: line)
    }

    /// Runs a batch of statements in pipeline mode inside one transaction: all or nothing. A failure
    /// names the statement that failed and the call site.
    @discardableResult
    public func pipeline(_ statements: [PostgresStatement], file: String = #fileID, line: Int = #line) async throws -> [PostgresRows] {
        try await withTransaction(file: file, line: line) { transaction in
            try transaction.pipeline(statements, file: file, line: line)
        }
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}
