import ConnectionKit
import Logging

/// One Postgres connection, owned by an actor whose executor is a dedicated OS thread.
///
/// Every method runs on that thread, so libpq's blocking calls never occupy Swift's cooperative pool:
/// while a statement waits on the server, the awaiting task is suspended and the pool keeps serving.
/// The libpq handle never leaves the actor; results come back as `Sendable` Swift values.
public actor PostgresConnection {
    private let executor: DedicatedThreadExecutor
    private let connection: LibPQConnection

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    init(configuration: PostgresClient.Configuration, logger: Logger, index: Int) {
        self.executor = DedicatedThreadExecutor(name: "postgres-\(index)")
        self.connection = LibPQConnection(configuration: configuration, logger: logger)
    }

    deinit {
        executor.shutdown()
    }

    /// Runs one statement and returns its rows. A failure names the statement and the call site.
    @discardableResult
    public func query(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) throws(PostgresError) -> PostgresRows {
        do {
            return try connection.execute(statement)
        } catch {
            throw error.calledFrom(file: file, line: line)
        }
    }

    /// Runs statements in libpq pipeline mode, outside a transaction block (each segment of the
    /// pipeline commits on its own). Use ``withTransaction(isolation:readOnly:file:line:_:)`` for an atomic batch.
    /// A failure names the statement that failed and the call site.
    public func pipeline(_ statements: [PostgresStatement], file: String = #fileID, line: Int = #line) throws(PostgresError) -> [PostgresRows] {
        do {
            return try connection.pipeline(statements)
        } catch {
            throw error.calledFrom(file: file, line: line)
        }
    }

    /// Bulk-loads rows with binary COPY; returns the number of rows copied.
    @discardableResult
    public func copy(into table: String, columns: [String], rows: [[any PostgresEncodable]]) throws -> Int {
        try connection.copy(into: table, columns: columns, rows: rows.map { $0.map(\.postgresValue) })
    }

    /// Runs `body` inside `BEGIN ... COMMIT` on this connection's thread. A thrown error rolls back and
    /// is rethrown; a failed commit throws (e.g. `.serializationFailure`, or an error of a statement
    /// queued with ``PostgresTransaction/enqueue(_:file:line:)``), and so does a body that went on after
    /// a statement failed (the server answers that `COMMIT` with `ROLLBACK`). The body is synchronous: a
    /// transaction never waits on another service. A `readOnly` transaction refuses every write. A
    /// failed `BEGIN` or `COMMIT` names this call site.
    public func withTransaction<T: Sendable>(
        isolation: PostgresIsolationLevel = .readCommitted,
        readOnly: Bool = false,
        file: String = #fileID,
        line: Int = #line,
        _ body: @Sendable (PostgresTransaction) throws -> T
    ) throws -> T {
        // BEGIN goes out with the first statement, saving a round trip per transaction.
        connection.begin("BEGIN ISOLATION LEVEL \(isolation.sql)" + (readOnly ? " READ ONLY" : ""))
        let transaction = PostgresTransaction(connection: connection)
        let value: T
        do {
            value = try body(transaction)
            transaction.end()
        } catch {
            transaction.end()
            rollBack()
            throw error
        }
        do {
            try connection.commit()
        } catch {
            rollBack()
            throw error.calledFrom(file: file, line: line)
        }
        return value
    }

    private func rollBack() {
        connection.rollBack()
    }

    /// The server process id of the current session, nil when not connected. It changes when the
    /// connection was re-established, which ends every session-level state such as advisory locks.
    public var backendPID: Int32? {
        connection.backendPID
    }

    /// The connection options libpq uses for the current session (keyword to value, as `PQconninfo`
    /// reports them: `tcp_user_timeout`, `keepalives_idle`, ...), nil when not connected. For diagnostics
    /// and tests.
    package var sessionSettings: [String: String]? {
        connection.sessionSettings
    }

    /// Closes the socket. The next call reconnects.
    public func close() {
        connection.close()
    }
}

/// The isolation level of a transaction.
public enum PostgresIsolationLevel: Sendable {
    case readCommitted
    case repeatableRead
    case serializable

    var sql: String {
        switch self {
        case .readCommitted: "READ COMMITTED"
        case .repeatableRead: "REPEATABLE READ"
        case .serializable: "SERIALIZABLE"
        }
    }
}

/// The open transaction handed to a `withTransaction` body. It is valid only inside the body: using it
/// after the body returned throws.
public final class PostgresTransaction {
    private let connection: LibPQConnection
    private var open = true

    init(connection: LibPQConnection) {
        self.connection = connection
    }

    func end() {
        open = false
    }

    private func checkOpen() throws(PostgresError) {
        guard open else { throw PostgresError(code: .unexpectedResponse, message: "transaction used after it ended") }
    }

    /// Runs one statement and returns its rows. A failure names the statement and the call site.
    @discardableResult
    public func query(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) throws(PostgresError) -> PostgresRows {
        do {
            try checkOpen()
            return try connection.execute(statement)
        } catch {
            throw error.failing(statement.sql).calledFrom(file: file, line: line)
        }
    }

    /// Runs SQL text without parameters, possibly several statements (simple query protocol). Meant for
    /// migrations and fixed DDL; anything carrying values must use ``query(_:file:line:)`` with bound values.
    public func executeScript(_ sql: String, file: String = #fileID, line: Int = #line) throws(PostgresError) {
        do {
            try checkOpen()
            try connection.executeScript(sql)
        } catch {
            throw error.failing(sql).calledFrom(file: file, line: line)
        }
    }

    /// Runs many statements in pipeline mode inside this transaction. A failure names the statement
    /// that failed and the call site.
    @discardableResult
    public func pipeline(_ statements: [PostgresStatement], file: String = #fileID, line: Int = #line) throws(PostgresError) -> [PostgresRows] {
        do {
            try checkOpen()
            return try connection.pipeline(statements)
        } catch {
            throw error.calledFrom(file: file, line: line)
        }
    }

    /// Queues statements whose results the body does not read: they are sent with the transaction's
    /// next round trip, in order, ahead of its next statement or pipeline, or with its `COMMIT`, so a
    /// body that ends with writes commits in one round trip instead of two. A queued statement's error
    /// fails that next call, or the commit, naming the queued statement, and the transaction rolls back.
    public func enqueue(_ statements: [PostgresStatement], file: String = #fileID, line: Int = #line) throws(PostgresError) {
        do {
            try checkOpen()
        } catch {
            throw error.calledFrom(file: file, line: line)
        }
        connection.enqueue(statements)
    }

    /// Bulk-loads rows with binary COPY inside this transaction.
    @discardableResult
    public func copy(into table: String, columns: [String], rows: [[any PostgresEncodable]]) throws(PostgresError) -> Int {
        try checkOpen()
        return try connection.copy(into: table, columns: columns, rows: rows.map { $0.map(\.postgresValue) })
    }
}
