import ConnectionKit

/// An error from the Postgres client: a server error with its SQLSTATE, or a client-side failure.
///
/// Callers match on ``code`` (`catch let error as PostgresError where error.code == .uniqueViolation`);
/// new codes may be added, so switch statements over codes need a default.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, extensible like postgres-nio's `PSQLError.Code`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// SQLSTATE 23505: a unique constraint or index refused the row.
        public static let uniqueViolation = Code("uniqueViolation")
        /// SQLSTATE 23503.
        public static let foreignKeyViolation = Code("foreignKeyViolation")
        /// SQLSTATE 23514.
        public static let checkViolation = Code("checkViolation")
        /// SQLSTATE 23502.
        public static let notNullViolation = Code("notNullViolation")
        /// SQLSTATE 23P01.
        public static let exclusionViolation = Code("exclusionViolation")
        /// SQLSTATE 40001: retry the whole transaction.
        public static let serializationFailure = Code("serializationFailure")
        /// SQLSTATE 40P01: retry the whole transaction.
        public static let deadlockDetected = Code("deadlockDetected")
        /// SQLSTATE 55P03 (`NOWAIT` or `lock_timeout`).
        public static let lockNotAvailable = Code("lockNotAvailable")
        /// SQLSTATE 57014: `statement_timeout` fired or the query was cancelled.
        public static let queryCanceled = Code("queryCanceled")
        /// Any other server error; ``PostgresError/sqlState`` says which.
        public static let server = Code("server")
        /// The connection could not be established.
        public static let connectionFailed = Code("connectionFailed")
        /// The connection broke while a statement was in flight: its outcome is unknown.
        public static let connectionLost = Code("connectionLost")
        /// No connection became free within the pool's bounded wait, or the pool is closed.
        public static let poolExhausted = Code("poolExhausted")
        /// A column could not be decoded into the requested Swift type.
        public static let decoding = Code("decoding")
        /// The server answered in a way the client did not expect.
        public static let unexpectedResponse = Code("unexpectedResponse")
        /// The client's configuration is invalid (e.g. a malformed URL).
        public static let invalidConfiguration = Code("invalidConfiguration")
    }

    public var code: Code
    /// A human-readable message (the server's primary message for server errors). Never contains secrets.
    public var message: String
    /// The five-character SQLSTATE for server errors.
    public var sqlState: String?
    /// The server's detail line, if any.
    public var detail: String?
    /// The violated constraint's name, for integrity errors.
    public var constraint: String?
    /// The SQL text of the statement that failed (`COMMIT` for a failed commit), never its bound values.
    public var statement: String?
    /// Where the failing call was made, `Module/File.swift:42`.
    public var location: String?

    public init(code: Code, message: String, sqlState: String? = nil, detail: String? = nil, constraint: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.constraint = constraint
    }

    /// One line for logs: code, message, SQLSTATE, constraint, the call site and the statement's SQL
    /// (shortened past 500 characters). Bound values are never included.
    public var description: String {
        var text = "PostgresError.\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let constraint { text += " [constraint \(constraint)]" }
        if let location { text += " at \(location)" }
        if let statement {
            let oneLine = statement.split(whereSeparator: \.isNewline).map { $0.trimmingPrefix(while: \.isWhitespace) }.joined(separator: " ")
            text += " in: \(oneLine.count > 500 ? oneLine.prefix(500) + "..." : oneLine)"
        }
        return text
    }

    /// This error, with the failing statement's text when none is recorded yet.
    func failing(_ sql: String) -> PostgresError {
        var error = self
        if error.statement == nil { error.statement = sql }
        return error
    }

    /// This error, with the call site when none is recorded yet.
    func calledFrom(file: String, line: Int) -> PostgresError {
        var error = self
        if error.location == nil { error.location = "\(file):\(line)" }
        return error
    }

    /// True when the same work may succeed if tried again: a conflict between transactions, a lost or
    /// refused connection, or a pool that was momentarily full.
    public var isTransient: Bool {
        [.serializationFailure, .deadlockDetected, .connectionFailed, .connectionLost, .poolExhausted, .lockNotAvailable].contains(code)
    }

    /// Maps a SQLSTATE to its code.
    static func code(forSQLState state: String) -> Code {
        switch state {
        case "23505": .uniqueViolation
        case "23503": .foreignKeyViolation
        case "23514": .checkViolation
        case "23502": .notNullViolation
        case "23P01": .exclusionViolation
        case "40001": .serializationFailure
        case "40P01": .deadlockDetected
        case "55P03": .lockNotAvailable
        case "57014": .queryCanceled
        // The server is shutting down or the backend was terminated: the connection is gone.
        case "57P01", "57P02", "57P03": .connectionLost
        default: state.hasPrefix("08") ? .connectionLost : .server
        }
    }

    init(_ exhausted: ConnectionPoolExhausted) {
        self.init(code: .poolExhausted, message: exhausted.description)
    }
}
