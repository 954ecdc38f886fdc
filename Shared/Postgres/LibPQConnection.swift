internal import CLibPQ
import ConnectionKit
import Foundation
import Logging
import SharedModel

/// The blocking libpq connection. Not `Sendable`: only its owning ``PostgresConnection`` actor, on that
/// actor's dedicated thread, ever touches it, so no libpq call runs on Swift's cooperative pool.
///
/// It heals itself: before each use it notices a dead socket (server restarted, backend terminated) and
/// reconnects, so the caller after a restart succeeds. A statement already in flight when the connection
/// breaks fails with `.connectionLost`, because its outcome is unknown.
///
/// A transaction is pinned to its session: from the moment its `BEGIN` is sent until it ends, the
/// connection never reconnects. A session lost in between makes every further statement of the
/// transaction, and its `COMMIT`, fail with `.connectionLost` (the server rolled it back), so nothing
/// of it can run in autocommit on a new session.
final class LibPQConnection {
    private var handle: OpaquePointer?
    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private var connectedOnce = false
    /// Statements prepared on the current session, by SQL text and parameter types.
    private var prepared: [PreparedKey: String] = [:]
    /// Numbers the session's prepared statements (never reused, so a failed prepare cannot make two
    /// statements share a name).
    private var preparedSerial = 0
    private static let maximumPrepared = 256
    /// A `BEGIN` not sent yet: it travels with the transaction's first statement (one round trip).
    private var pendingBegin: String?
    /// Statements of the open transaction whose results nobody reads (``enqueue(_:)``), not sent yet:
    /// they travel, in order, with the transaction's next round trip, or with its `COMMIT`.
    private var pendingWrites: [PostgresStatement] = []
    /// True from the moment a transaction's `BEGIN` may have reached the server until the transaction
    /// ends: the session must not be replaced meanwhile.
    private var pinnedToSession = false

    private struct PreparedKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Opens a transaction block lazily: `BEGIN` is sent with the first statement.
    func begin(_ sql: String) {
        pendingBegin = sql
    }

    /// Queues statements of the open transaction whose results the caller does not need: they are sent
    /// with the transaction's next round trip (its next statement or pipeline, or its `COMMIT`), in
    /// order, so a transaction that ends with writes commits in the same round trip.
    func enqueue(_ statements: [PostgresStatement]) {
        pendingWrites += statements
    }

    /// Sends a pending `BEGIN` and the queued writes (before a statement that cannot carry them).
    private func flushPending() throws(PostgresError) {
        if !pendingWrites.isEmpty {
            _ = try pipelineStatements([])
        } else {
            try flushBegin()
        }
    }

    /// Sends a pending `BEGIN` on its own.
    private func flushBegin() throws(PostgresError) {
        guard pendingBegin != nil else { return }
        // Connects if needed and pins the transaction to this session before BEGIN goes out.
        _ = try ready()
        guard let begin = pendingBegin else { return }
        pendingBegin = nil
        try executeSimple(begin)
    }

    /// Commits the transaction block opened with ``begin(_:)``, sending the queued writes (and a pending
    /// `BEGIN`) in the same round trip. When no statement ran, nothing was sent and nothing needs ending.
    /// A `COMMIT` the server answers with `ROLLBACK` (the transaction had failed) throws: the body went on
    /// after an error, and nothing it wrote was kept.
    func commit() throws(PostgresError) {
        if pendingBegin != nil && pendingWrites.isEmpty {
            pendingBegin = nil
            return
        }
        let committed: Bool
        if pendingWrites.isEmpty {
            committed = try executeSimple("COMMIT") == "COMMIT"
        } else {
            committed = try pipelineCommitting()
        }
        guard committed else {
            throw PostgresError(code: .server, message: "the transaction was rolled back at COMMIT: a statement in it had failed")
                .failing("COMMIT")
        }
        pinnedToSession = false
    }

    /// Abandons the transaction block: nothing if `BEGIN` was never sent, `ROLLBACK` if one is open. A
    /// failed rollback means a broken connection; the server rolled back when the session ended.
    func rollBack() {
        defer { pinnedToSession = false }
        pendingWrites.removeAll()
        if pendingBegin != nil {
            pendingBegin = nil
            return
        }
        guard inTransactionBlock else { return }
        _ = try? executeSimple("ROLLBACK")
    }

    /// True while a transaction block is open on the server.
    private var inTransactionBlock: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// The server process of the current session (no I/O).
    var backendPID: Int32? {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return nil }
        return PQbackendPID(handle)
    }

    /// Returns a live connection handle, connecting or reconnecting as needed; inside a transaction whose
    /// `BEGIN` was sent, only the transaction's own session (a lost one throws `.connectionLost`).
    func ready() throws(PostgresError) -> OpaquePointer {
        if pinnedToSession {
            guard let handle, PQstatus(handle) == CONNECTION_OK else {
                throw PostgresError(
                    code: .connectionLost,
                    message: "the connection was lost inside a transaction; the server rolled the transaction back")
            }
            return handle
        }
        let handle = try liveHandle()
        // Whatever runs next sends the pending BEGIN: from here on the transaction owns this session.
        if pendingBegin != nil { pinnedToSession = true }
        return handle
    }

    /// The current handle if it is still usable, else a new connection.
    private func liveHandle() throws(PostgresError) -> OpaquePointer {
        if let handle {
            if PQstatus(handle) == CONNECTION_OK && !socketIsStale(handle) {
                return handle
            }
            logger.notice("postgres connection lost; reconnecting")
            PQfinish(handle)
            self.handle = nil
        }
        let handle = try connect()
        self.handle = handle
        // Prepared statements belong to the session that prepared them.
        prepared.removeAll()
        return handle
    }

    private func connect() throws(PostgresError) -> OpaquePointer {
        let parameters = Self.connectionParameters(for: configuration)
        let handle = withCStrings(parameters.map(\.0)) { keywords in
            withCStrings(parameters.map(\.1)) { values in
                PQconnectdbParams(keywords, values, 1)
            }
        }
        guard let handle else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = Self.errorMessage(handle)
            PQfinish(handle)
            throw PostgresError(code: .connectionFailed, message: message)
        }
        if connectedOnce {
            logger.info("postgres connection re-established")
        }
        connectedOnce = true
        return handle
    }

    /// The keywords and values handed to `PQconnectdbParams` (with `expand_dbname`): this client's defaults
    /// first, then the URL (as `dbname`), so whatever the URL sets wins because libpq keeps the last value
    /// of a repeated keyword. `options` comes last and carries the client's server settings followed by
    /// the URL's own, so the URL's `-c` settings win there too.
    static func connectionParameters(for configuration: PostgresClient.Configuration) -> [(String, String)] {
        let connectSeconds = configuration.connectTimeout.wholeSecondsRoundedUp(minimum: 2)
        var parameters: [(String, String)] = [
            ("connect_timeout", String(connectSeconds)),
            ("application_name", configuration.applicationName),
            ("keepalives", "1"),
            ("keepalives_idle", String(configuration.keepalivesIdle.wholeSecondsRoundedUp(minimum: 1))),
            ("keepalives_interval", String(configuration.keepalivesInterval.wholeSecondsRoundedUp(minimum: 1))),
            ("keepalives_count", String(max(1, configuration.keepalivesCount))),
        ]
        if let userTimeout = configuration.tcpUserTimeout {
            parameters.append(("tcp_user_timeout", String(max(1, userTimeout.wholeMilliseconds))))
        }
        parameters.append(("dbname", configuration.url))
        var options = "-c TimeZone=UTC"
        if let statementTimeout = configuration.statementTimeout {
            options += " -c statement_timeout=\(statementTimeout.wholeMilliseconds)"
        }
        if let urlOptions = urlSettings(configuration.url)["options"], !urlOptions.isEmpty {
            options += " " + urlOptions
        }
        parameters.append(("options", options))
        return parameters
    }

    /// The settings a connection string or URL sets explicitly (libpq's parser; no defaults filled in).
    static func urlSettings(_ url: String) -> [String: String] {
        guard let parsed = PQconninfoParse(url, nil) else { return [:] }
        defer { PQconninfoFree(parsed) }
        return settings(of: parsed)
    }

    /// The keywords of a libpq option array that have a value.
    private static func settings(of options: UnsafeMutablePointer<PQconninfoOption>) -> [String: String] {
        var settings: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { settings[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        return settings
    }

    /// The connection options libpq uses for the current session (`PQconninfo`), nil when not connected.
    var sessionSettings: [String: String]? {
        guard let handle, PQstatus(handle) == CONNECTION_OK, let info = PQconninfo(handle) else { return nil }
        defer { PQconninfoFree(info) }
        return Self.settings(of: info)
    }

    /// An idle connection has nothing to read unless the server said goodbye (restart, termination).
    private func socketIsStale(_ handle: OpaquePointer) -> Bool {
        guard PQtransactionStatus(handle) == PQTRANS_IDLE else { return false }
        let socket = PQsocket(handle)
        guard socket >= 0 else { return true }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        if ready == 0 { return false }
        if ready < 0 { return true }
        if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK { return true }
        // Only a notification may arrive unasked; anything else on an idle session (the server's
        // "terminating connection" message before it closes the socket) means the session is over.
        var notified = false
        while let notification = PQnotifies(handle) {
            notified = true
            PQfreemem(notification)
        }
        return !notified
    }

    /// Marks the connection unusable after a protocol-level failure; the next use reconnects.
    private func discard() {
        close()
    }

    // MARK: Statements

    /// Runs one statement with bound parameters and returns its rows.
    /// Each distinct statement (SQL text and parameter types) is prepared once per session and then
    /// executed by name, so the server parses and plans it only once.
    /// A failure carries the statement's SQL text.
    func execute(_ statement: PostgresStatement) throws(PostgresError) -> PostgresRows {
        if !pendingWrites.isEmpty {
            // The queued writes go first, in the same round trip (a failure names its own statement).
            return try pipelineStatements([statement])[0]
        }
        do {
            return try executeStatement(statement.sql, statement.binds)
        } catch {
            throw error.failing(statement.sql)
        }
    }

    private func executeStatement(_ sql: String, _ binds: [PostgresValue]) throws(PostgresError) -> PostgresRows {
        let handle = try ready()
        let name = try preparedName(for: sql, binds: binds, handle: handle)
        if let begin = pendingBegin {
            pendingBegin = nil
            return try executeAfterBegin(begin, name: name, binds: binds, handle: handle)
        }
        let result = withParameters(binds) { count, _, values, lengths, formats in
            PQexecPrepared(handle, name, count, values, lengths, formats, 1)
        }
        return try consume(result, handle: handle)
    }

    /// Sends `BEGIN` and the prepared statement in one pipeline flush and reads both answers.
    private func executeAfterBegin(
        _ begin: String, name: String, binds: [PostgresValue], handle: OpaquePointer
    ) throws(PostgresError)
        -> PostgresRows
    {
        guard PQenterPipelineMode(handle) == 1 else {
            try executeSimple(begin)
            return try execute(name: name, binds: binds, handle: handle)
        }
        let sentBegin = PQsendQueryParams(handle, begin, 0, nil, nil, nil, nil, 0)
        let sentStatement = withParameters(binds) { count, _, values, lengths, formats in
            PQsendQueryPrepared(handle, name, count, values, lengths, formats, 1)
        }
        guard sentBegin == 1, sentStatement == 1, PQpipelineSync(handle) == 1 else {
            let error = connectionError(handle)
            discard()
            throw error
        }
        let beginOutcome = try nextPipelineResult(handle)
        let statementOutcome = try nextPipelineResult(handle)
        try expectPipelineSync(handle)
        _ = PQexitPipelineMode(handle)
        if case .failure(let error) = beginOutcome { throw error }
        guard let rows = try statementOutcome.get() else {
            throw PostgresError(code: .server, message: "statement skipped after an error")
        }
        return rows
    }

    private func execute(name: String, binds: [PostgresValue], handle: OpaquePointer) throws(PostgresError) -> PostgresRows {
        let result = withParameters(binds) { count, _, values, lengths, formats in
            PQexecPrepared(handle, name, count, values, lengths, formats, 1)
        }
        return try consume(result, handle: handle)
    }

    private func preparedName(for sql: String, binds: [PostgresValue], handle: OpaquePointer) throws(PostgresError) -> String {
        let key = PreparedKey(sql: sql, types: binds.map(\.type.oid))
        if let name = prepared[key] { return name }
        if prepared.count >= Self.maximumPrepared {
            _ = try consume(PQexec(handle, "DEALLOCATE ALL"), handle: handle)
            prepared.removeAll()
        }
        let name = nextPreparedName()
        let result = key.types.withUnsafeBufferPointer { types in
            PQprepare(handle, name, sql, Int32(types.count), types.baseAddress)
        }
        _ = try consume(result, handle: handle)
        prepared[key] = name
        return name
    }

    private func nextPreparedName() -> String {
        preparedSerial += 1
        return "s\(preparedSerial)"
    }

    /// Runs SQL text without parameters with the simple protocol (several statements allowed).
    func executeScript(_ sql: String) throws(PostgresError) {
        do {
            try flushPending()
        } catch {
            throw error.failing(sql)
        }
        try executeSimple(sql)
    }

    /// Runs a statement that takes no parameters with the simple protocol (`BEGIN`, `COMMIT`, ...). A
    /// failure carries the statement's SQL text.
    /// Returns the command tag (`COMMIT`, or `ROLLBACK` when a failed transaction was asked to commit).
    @discardableResult
    func executeSimple(_ sql: String) throws(PostgresError) -> String {
        do {
            let handle = try ready()
            let result = PQexec(handle, sql)
            let tag = result.flatMap { PQcmdStatus($0) }.map { String(cString: $0) } ?? ""
            _ = try consume(result, handle: handle)
            return tag
        } catch {
            throw error.failing(sql)
        }
    }

    /// Turns a result into rows or a typed error, and frees it.
    private func consume(_ result: OpaquePointer?, handle: OpaquePointer) throws(PostgresError) -> PostgresRows {
        guard let result else {
            throw connectionError(handle)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_SINGLE_TUPLE:
            return Self.rows(from: result)
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            throw Self.error(from: result, handle: handle)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            discard()
            throw PostgresError(code: .unexpectedResponse, message: "COPY is only supported through copyFrom")
        default:
            throw PostgresError(code: .unexpectedResponse, message: String(cString: PQresStatus(PQresultStatus(result))))
        }
    }

    private func connectionError(_ handle: OpaquePointer) -> PostgresError {
        let message = Self.errorMessage(handle)
        if PQstatus(handle) != CONNECTION_OK {
            discard()
            return PostgresError(code: .connectionLost, message: message)
        }
        return PostgresError(code: .unexpectedResponse, message: message)
    }

    // MARK: Pipeline

    /// Sends many statements without waiting for each answer (libpq pipeline mode) and returns each
    /// statement's rows in order. The first failing statement's error is thrown after the batch drains;
    /// inside a transaction block that error aborts the transaction.
    ///
    /// Statements are prepared once per session like ``execute(_:_:)``'s: an unknown one is prepared
    /// inside the same pipeline (`Parse` before its `Bind`), so it costs no extra round trip, and a
    /// pending `BEGIN` travels in the same flush. A failure carries the SQL text of the statement that
    /// failed (the first statement's when the batch as a whole failed).
    func pipeline(_ statements: [PostgresStatement]) throws(PostgresError) -> [PostgresRows] {
        do {
            return try pipelineStatements(statements)
        } catch {
            throw statements.first.map { error.failing($0.sql) } ?? error
        }
    }

    /// Sends the queued writes in pipeline mode and `COMMIT` in the same round trip; returns whether the
    /// server committed (false: it answered `ROLLBACK`).
    private func pipelineCommitting() throws(PostgresError) -> Bool {
        var committed: Bool? = false
        _ = try pipelineStatements([], committing: &committed)
        return committed == true
    }

    private func pipelineStatements(_ statements: [PostgresStatement]) throws(PostgresError) -> [PostgresRows] {
        var committed: Bool?
        return try pipelineStatements(statements, committing: &committed)
    }

    /// The queued writes go first (their results dropped); with `committed` set, `COMMIT` goes last and
    /// `committed` says whether the server answered `COMMIT`.
    private func pipelineStatements(
        _ requested: [PostgresStatement], committing committed: inout Bool?
    ) throws(PostgresError)
        -> [PostgresRows]
    {
        let queued = pendingWrites.count
        let statements = pendingWrites + requested
        pendingWrites.removeAll()
        guard !statements.isEmpty || committed != nil else { return [] }
        let handle = try ready()
        if prepared.count + statements.count > Self.maximumPrepared {
            try flushBegin()
            _ = try consume(PQexec(handle, "DEALLOCATE ALL"), handle: handle)
            prepared.removeAll()
        }
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgresError(code: .unexpectedResponse, message: "could not enter pipeline mode: \(Self.errorMessage(handle))")
        }
        /// What each result read back answers.
        enum Sent {
            case begin(sql: String)
            case prepare(PreparedKey, String, sql: String)
            case statement(sql: String)
            case commit
        }
        var results: [PostgresRows] = []
        results.reserveCapacity(statements.count)
        var firstError: PostgresError?
        // Bounded segments keep both sides' socket buffers from filling up while nobody reads.
        let segmentSize = 512
        var start = 0
        repeat {
            let segment = statements[start..<min(start + segmentSize, statements.count)]
            start += segment.count
            var sent: [Sent] = []
            var sendFailed = false
            if let begin = pendingBegin {
                pendingBegin = nil
                sendFailed = PQsendQueryParams(handle, begin, 0, nil, nil, nil, nil, 0) != 1
                sent.append(.begin(sql: begin))
            }
            var preparing: [PreparedKey: String] = [:]
            for statement in segment where !sendFailed {
                let key = PreparedKey(sql: statement.sql, types: statement.binds.map(\.type.oid))
                var name = prepared[key] ?? preparing[key]
                if name == nil {
                    let newName = nextPreparedName()
                    let queued = key.types.withUnsafeBufferPointer { types in
                        PQsendPrepare(handle, newName, statement.sql, Int32(types.count), types.baseAddress)
                    }
                    sendFailed = queued != 1
                    preparing[key] = newName
                    sent.append(.prepare(key, newName, sql: statement.sql))
                    name = newName
                }
                let queued = withParameters(statement.binds) { count, _, values, lengths, formats in
                    PQsendQueryPrepared(handle, name, count, values, lengths, formats, 1)
                }
                sendFailed = sendFailed || queued != 1
                sent.append(.statement(sql: statement.sql))
            }
            if committed != nil && start == statements.count && !sendFailed {
                sendFailed = PQsendQueryParams(handle, "COMMIT", 0, nil, nil, nil, nil, 0) != 1
                sent.append(.commit)
            }
            guard !sendFailed, PQpipelineSync(handle) == 1 else {
                let error = connectionError(handle)
                discard()
                throw error
            }
            for item in sent {
                if case .commit = item {
                    // A skipped COMMIT (an earlier statement failed) leaves `firstError` to throw.
                    switch try nextPipelineTag(handle) {
                    case .success(let tag?): committed = tag == "COMMIT"
                    case .success(nil): break
                    case .failure(let error): firstError = firstError ?? error.failing("COMMIT")
                    }
                    continue
                }
                let outcome = try nextPipelineResult(handle)
                switch (item, outcome) {
                case (.statement, .success(let rows?)): results.append(rows)
                // A statement prepared before an error stays prepared: prepared statements are not transactional.
                case (.prepare(let key, let name, _), .success(.some)): prepared[key] = name
                case (_, .success): break
                case (_, .failure(let error)):
                    guard firstError == nil else { break }
                    switch item {
                    case .begin(let sql), .prepare(_, _, let sql), .statement(let sql): firstError = error.failing(sql)
                    case .commit: break
                    }
                }
            }
            try expectPipelineSync(handle)
            if let firstError {
                _ = PQexitPipelineMode(handle)
                throw firstError
            }
        } while start < statements.count
        guard PQexitPipelineMode(handle) == 1 else {
            discard()
            throw PostgresError(code: .unexpectedResponse, message: "could not leave pipeline mode")
        }
        return Array(results.dropFirst(queued))
    }

    // MARK: Independent units (shared connections)

    /// Runs units that do not depend on each other, each all or nothing, and appends each unit's outcome
    /// (its statements' rows, or the first error, naming its statement) to `outcomes`; throws only when
    /// the connection broke (the outcomes read until then are kept). Never inside a transaction block.
    ///
    /// Several units that write commit together (group commit): one transaction, one round trip and one
    /// WAL flush for all of them, where units committed one after another on this one connection each
    /// waited for a flush of their own (under load the shared connections' commits were bounded by the
    /// disk's flush time, not by the CPU). Each unit still sees what the units before it wrote, as it
    /// would after their commits. When any statement fails, nothing of the group is kept and the units
    /// run again apart, so one unit's error (a unique violation) still fails that unit only.
    ///
    /// Units of `SELECT`s go together too, though they have nothing to flush: apart, each unit ends
    /// with a sync, and libpq 15 writes to the socket at every sync (`PQpipelineSync` flushes; libpq 17's
    /// `PQsendPipelineSync` does not), so a round trip of N reads cost N `send`s, each waking the
    /// server. Together they are one `send`, whatever they are.
    func exchange(_ units: [[PostgresStatement]], into outcomes: inout [Result<[PostgresRows], PostgresError>]) throws(PostgresError) {
        if units.count > 1, let together = try exchangeTogether(units) {
            outcomes.append(contentsOf: together.map { .success($0) })
            return
        }
        try exchangeApart(units, into: &outcomes)
    }

    /// `units` in one transaction: `BEGIN`, every unit's statements, `COMMIT`, one sync. Returns each
    /// unit's rows once committed; nil when a statement failed or the server did not commit (nothing
    /// was kept, and the connection is out of the transaction again).
    private func exchangeTogether(_ units: [[PostgresStatement]]) throws(PostgresError) -> [[PostgresRows]]? {
        let statements = units.reduce(0) { $0 + $1.count }
        let handle = try enterPipeline(statements: statements)
        var sendFailed = PQsendQueryParams(handle, "BEGIN", 0, nil, nil, nil, nil, 0) != 1
        var preparing: [PreparedKey: String] = [:]
        var prepares: [(key: PreparedKey, name: String)?] = []
        prepares.reserveCapacity(statements)
        for unit in units {
            for statement in unit where !sendFailed {
                prepares.append(send(statement, preparing: &preparing, handle: handle, sendFailed: &sendFailed))
            }
        }
        sendFailed = sendFailed || PQsendQueryParams(handle, "COMMIT", 0, nil, nil, nil, nil, 0) != 1
        guard !sendFailed, PQpipelineSync(handle) == 1 else {
            let error = connectionError(handle)
            discard()
            throw error
        }
        var failed = false
        if case .failure = try nextPipelineTag(handle) { failed = true }
        var together: [[PostgresRows]] = []
        together.reserveCapacity(units.count)
        var index = 0
        for unit in units {
            var rows: [PostgresRows] = []
            rows.reserveCapacity(unit.count)
            for _ in unit {
                if let prepare = prepares[index] {
                    // A statement prepared before an error stays prepared: prepared statements are not transactional.
                    if case .success(.some) = try nextPipelineResult(handle) { prepared[prepare.key] = prepare.name }
                }
                switch try nextPipelineResult(handle) {
                case .success(let result?): rows.append(result)
                case .success(.none), .failure: failed = true
                }
                index += 1
            }
            together.append(rows)
        }
        // Skipped after an error, or `ROLLBACK` when the transaction had failed.
        if case .success(let tag) = try nextPipelineTag(handle), tag == "COMMIT" {} else { failed = true }
        try expectPipelineSync(handle)
        guard PQexitPipelineMode(handle) == 1 else {
            discard()
            throw PostgresError(code: .unexpectedResponse, message: "could not leave pipeline mode")
        }
        guard failed else { return together }
        // An error leaves the transaction aborted until it is ended.
        if PQtransactionStatus(handle) != PQTRANS_IDLE {
            _ = try consume(PQexec(handle, "ROLLBACK"), handle: handle)
        }
        return nil
    }

    /// Queues `statement` in the pipeline being sent, under its prepared statement: one known on the
    /// session or earlier in this pipeline (`preparing`), or a new one whose `Parse` is queued first
    /// (returned, to be recorded once the server answers it).
    private func send(
        _ statement: PostgresStatement, preparing: inout [PreparedKey: String], handle: OpaquePointer, sendFailed: inout Bool
    ) -> (key: PreparedKey, name: String)? {
        let key = PreparedKey(sql: statement.sql, types: statement.binds.map(\.type.oid))
        var prepare: (key: PreparedKey, name: String)?
        let name: String
        if let known = prepared[key] ?? preparing[key] {
            name = known
        } else {
            name = nextPreparedName()
            let queued = key.types.withUnsafeBufferPointer { types in
                PQsendPrepare(handle, name, statement.sql, Int32(types.count), types.baseAddress)
            }
            sendFailed = sendFailed || queued != 1
            preparing[key] = name
            prepare = (key, name)
        }
        let queued = withParameters(statement.binds) { count, _, values, lengths, formats in
            PQsendQueryPrepared(handle, name, count, values, lengths, formats, 1)
        }
        sendFailed = sendFailed || queued != 1
        return prepare
    }

    /// The connection in pipeline mode, ready for `statements` more prepared statements.
    private func enterPipeline(statements: Int) throws(PostgresError) -> OpaquePointer {
        let handle = try ready()
        if prepared.count + statements > Self.maximumPrepared {
            _ = try consume(PQexec(handle, "DEALLOCATE ALL"), handle: handle)
            prepared.removeAll()
        }
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgresError(code: .unexpectedResponse, message: "could not enter pipeline mode: \(Self.errorMessage(handle))")
        }
        return handle
    }

    /// Each unit followed by a sync: one implicit transaction per unit, so a unit's error fails that
    /// unit only. Statements are prepared once per session, the `Parse` of an unknown one travelling in
    /// the same round trip.
    private func exchangeApart(_ units: [[PostgresStatement]], into outcomes: inout [Result<[PostgresRows], PostgresError>]) throws(PostgresError) {
        let handle = try enterPipeline(statements: units.reduce(0) { $0 + $1.count })
        typealias Prepare = (key: PreparedKey, name: String)
        var preparing: [PreparedKey: String] = [:]
        var prepares: [[Prepare?]] = []
        prepares.reserveCapacity(units.count)
        var sendFailed = false
        for unit in units where !sendFailed {
            // A statement reuses a `Parse` queued earlier only within its own unit: an error in an
            // earlier unit skips the rest of that unit, its `Parse`s included.
            preparing.removeAll(keepingCapacity: true)
            var unitPrepares: [Prepare?] = []
            for statement in unit where !sendFailed {
                unitPrepares.append(send(statement, preparing: &preparing, handle: handle, sendFailed: &sendFailed))
            }
            sendFailed = sendFailed || PQpipelineSync(handle) != 1
            prepares.append(unitPrepares)
        }
        guard !sendFailed else {
            let error = connectionError(handle)
            discard()
            throw error
        }
        outcomes.reserveCapacity(outcomes.count + units.count)
        for (unit, unitPrepares) in zip(units, prepares) {
            var rows: [PostgresRows] = []
            rows.reserveCapacity(unit.count)
            var failure: PostgresError?
            for (statement, prepare) in zip(unit, unitPrepares) {
                var prepareError: PostgresError?
                if let prepare {
                    switch try nextPipelineResult(handle) {
                    case .success(.some): prepared[prepare.key] = prepare.name
                    case .success(.none): break
                    case .failure(let error): prepareError = error
                    }
                }
                switch try nextPipelineResult(handle) {
                case .success(let result?): rows.append(result)
                case .success(.none):
                    // Skipped: its own Parse failed, or an earlier statement of the unit did.
                    if failure == nil {
                        failure = (prepareError ?? PostgresError(code: .server, message: "statement skipped after an error")).failing(statement.sql)
                    }
                case .failure(let error):
                    if failure == nil { failure = error.failing(statement.sql) }
                }
            }
            try expectPipelineSync(handle)
            outcomes.append(failure.map { .failure($0) } ?? .success(rows))
        }
        guard PQexitPipelineMode(handle) == 1 else {
            discard()
            throw PostgresError(code: .unexpectedResponse, message: "could not leave pipeline mode")
        }
    }

    /// Reads one statement's result in pipeline mode: rows, nil when the statement was skipped after an
    /// earlier error, or the statement's error. A lost connection throws.
    private func nextPipelineResult(_ handle: OpaquePointer) throws(PostgresError) -> Result<PostgresRows?, PostgresError> {
        try nextPipelineResult(handle, reading: Self.rows(from:))
    }

    /// Reads the result of a statement without rows in pipeline mode: its command tag (`COMMIT`, or
    /// `ROLLBACK` for a failed transaction asked to commit), nil when it was skipped, or its error.
    private func nextPipelineTag(_ handle: OpaquePointer) throws(PostgresError) -> Result<String?, PostgresError> {
        try nextPipelineResult(handle) { result in PQcmdStatus(result).map { String(cString: $0) } ?? "" }
    }

    private func nextPipelineResult<Value>(
        _ handle: OpaquePointer, reading read: (OpaquePointer) -> Value
    ) throws(PostgresError)
        -> Result<Value?, PostgresError>
    {
        guard let result = PQgetResult(handle) else {
            let error = connectionError(handle)
            discard()
            throw error
        }
        defer {
            PQclear(result)
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(handle) { PQclear(extra) }
        }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK: return .success(read(result))
        case PGRES_PIPELINE_ABORTED: return .success(nil)
        default: return .failure(Self.error(from: result, handle: handle))
        }
    }

    /// Reads the sync that ends a pipeline segment. Where the server sent an error instead (e.g.
    /// `57P01`, terminating the connection in a fast shutdown) or the connection ended, that error is
    /// thrown, so a lost connection stays `connectionLost` (transient) rather than a protocol error.
    private func expectPipelineSync(_ handle: OpaquePointer) throws(PostgresError) {
        guard let sync = PQgetResult(handle) else {
            let error = connectionError(handle)
            discard()
            throw error
        }
        defer { PQclear(sync) }
        switch PQresultStatus(sync) {
        case PGRES_PIPELINE_SYNC:
            return
        case PGRES_FATAL_ERROR:
            let error = Self.error(from: sync, handle: handle)
            discard()
            throw error
        default:
            discard()
            throw PostgresError(code: .unexpectedResponse, message: "pipeline did not end with a sync")
        }
    }

    // MARK: COPY

    /// Streams rows into `table` with `COPY ... FROM STDIN (FORMAT binary)` and returns the row count.
    /// Each value must be of its column's exact type (binary COPY does not convert).
    func copy(into table: String, columns: [String], rows: [[PostgresValue]]) throws(PostgresError) -> Int {
        try flushPending()
        let handle = try ready()
        let target = try table.split(separator: ".", omittingEmptySubsequences: false).map { part throws(PostgresError) in
            try quoteIdentifier(String(part), handle: handle)
        }.joined(separator: ".")
        let columnList = try columns.map { column throws(PostgresError) in try quoteIdentifier(column, handle: handle) }
            .joined(separator: ", ")
        guard let start = PQexec(handle, "COPY \(target) (\(columnList)) FROM STDIN WITH (FORMAT binary)") else {
            throw connectionError(handle)
        }
        let startStatus = PQresultStatus(start)
        if startStatus != PGRES_COPY_IN {
            defer { PQclear(start) }
            throw Self.error(from: start, handle: handle)
        }
        PQclear(start)

        var buffer: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + bigEndianBytes(Int32(0)) + bigEndianBytes(Int32(0))
        var sendFailed = false
        func flush() {
            guard !buffer.isEmpty, !sendFailed else { return }
            let sent = buffer.withUnsafeBufferPointer { pointer in
                pointer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            if sent != 1 { sendFailed = true }
            buffer.removeAll(keepingCapacity: true)
        }
        for row in rows {
            buffer += bigEndianBytes(Int16(row.count))
            for value in row {
                if let bytes = value.bytes {
                    buffer += bigEndianBytes(Int32(bytes.count))
                    buffer += bytes
                } else {
                    buffer += bigEndianBytes(Int32(-1))
                }
            }
            if buffer.count >= 1 << 16 { flush() }
        }
        buffer += bigEndianBytes(Int16(-1))
        flush()
        guard !sendFailed, PQputCopyEnd(handle, nil) == 1 else {
            let error = connectionError(handle)
            discard()
            throw error
        }
        var outcome: Result<Int, PostgresError> = .failure(PostgresError(code: .unexpectedResponse, message: "COPY returned no result"))
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                outcome = .success(Self.rows(from: result).affectedRows)
            } else if case .failure(let error) = outcome, error.code == .unexpectedResponse {
                outcome = .failure(Self.error(from: result, handle: handle))
            }
            PQclear(result)
        }
        return try outcome.get()
    }

    private func quoteIdentifier(_ identifier: String, handle: OpaquePointer) throws(PostgresError) -> String {
        guard let quoted = PQescapeIdentifier(handle, identifier, identifier.utf8.count) else {
            throw PostgresError(code: .invalidConfiguration, message: "invalid identifier")
        }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    // MARK: Conversions

    static func errorMessage(_ handle: OpaquePointer) -> String {
        guard let message = PQerrorMessage(handle) else { return "unknown libpq error" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func field(_ result: OpaquePointer, _ code: Character) -> String? {
        guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
        return String(cString: value)
    }

    static func error(from result: OpaquePointer, handle: OpaquePointer) -> PostgresError {
        let sqlState = field(result, "C")
        var message = field(result, "M") ?? String(cString: PQresultErrorMessage(result))
        if message.isEmpty { message = errorMessage(handle) }
        let connectionOK = PQstatus(handle) == CONNECTION_OK
        var code = sqlState.map(PostgresError.code(forSQLState:)) ?? (connectionOK ? .server : .connectionLost)
        // Class 08 covers protocol violations too; the connection is lost only if libpq says so.
        if code == .connectionLost, connectionOK, sqlState?.hasPrefix("08") == true { code = .server }
        return PostgresError(code: code, message: message, sqlState: sqlState, detail: field(result, "D"), constraint: field(result, "n"))
    }

    static func rows(from result: OpaquePointer) -> PostgresRows {
        let fieldCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [String] = []
        var types: [PostgresType] = []
        columns.reserveCapacity(fieldCount)
        for column in 0..<fieldCount {
            columns.append(PQfname(result, Int32(column)).map { String(cString: $0) } ?? "?column?")
            types.append(PostgresType(oid: PQftype(result, Int32(column))))
        }
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var storage: [UInt8] = []
            var ranges: [Range<Int>?] = []
            ranges.reserveCapacity(fieldCount)
            for column in 0..<fieldCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    ranges.append(nil)
                    continue
                }
                let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                let start = storage.count
                if length > 0, let value = PQgetvalue(result, Int32(row), Int32(column)) {
                    value.withMemoryRebound(to: UInt8.self, capacity: length) { pointer in
                        storage.append(contentsOf: UnsafeBufferPointer(start: pointer, count: length))
                    }
                }
                ranges.append(start..<(start + length))
            }
            rows.append(PostgresRow(columns: columns, columnTypes: types, storage: storage, ranges: ranges))
        }
        let affected = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
        return PostgresRows(columns: columns, columnTypes: types, rows: rows, affectedRows: affected)
    }
}

/// Lays out bound parameters in one buffer and passes libpq's parallel arrays to `body`.
private func withParameters<R>(
    _ binds: [PostgresValue],
    _ body: (Int32, [Oid], [UnsafePointer<CChar>?], [Int32], [Int32]) -> R
) -> R {
    let total = binds.reduce(0) { $0 + ($1.bytes?.count ?? 0) }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
    defer { buffer.deallocate() }
    var types: [Oid] = []
    var values: [UnsafePointer<CChar>?] = []
    var lengths: [Int32] = []
    types.reserveCapacity(binds.count)
    values.reserveCapacity(binds.count)
    lengths.reserveCapacity(binds.count)
    var offset = 0
    for bind in binds {
        types.append(bind.type.oid)
        if let bytes = bind.bytes {
            let destination = buffer.baseAddress.map { $0 + offset }
            if let destination, !bytes.isEmpty {
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress { destination.copyMemory(from: base, byteCount: source.count) }
                }
            }
            values.append(destination.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) })
            lengths.append(Int32(bytes.count))
            offset += bytes.count
        } else {
            values.append(nil)
            lengths.append(0)
        }
    }
    let formats = [Int32](repeating: 1, count: binds.count)
    return body(Int32(binds.count), types, values, lengths, formats)
}

/// Passes a NULL-terminated array of C strings to `body`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    return body(duplicates.map { $0.map { UnsafePointer($0) } } + [nil])
}

extension LibPQConnection: PipelinedConnection {
    static func closedError() -> any Error {
        PostgresError(code: .poolExhausted, message: "the postgres client is closed")
    }

    static func overloadedError(limit: Int) -> any Error {
        PostgresError(code: .poolExhausted, message: "postgres shared connection overloaded: \(limit) statements already wait for it")
    }

    static func lostError() -> any Error {
        PostgresError(code: .connectionLost, message: "the connection ended before the statement's result")
    }
}
