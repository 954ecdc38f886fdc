/// A SQL statement and its bound parameters, built by string interpolation so no call site numbers a
/// placeholder by hand (the shape of postgres-nio's `PostgresQuery`):
///
/// ```swift
/// try transaction.query("UPDATE booking.sagas SET state = \(state) WHERE booking_id = \(id)")
/// ```
///
/// - Literal text is SQL.
/// - `\(value)` with any ``PostgresEncodable`` (an `Optional` too: `nil` is a NULL of the wrapped
///   type) appends the next placeholder (`$1`, `$2`, ...) and binds the value. Values never become SQL
///   text.
/// - `\(unescaped: text)` splices trusted SQL text written in code (a table name, a fixed clause);
///   never anything that came from input.
/// - `\(fragment)` with another statement splices its SQL with its placeholders renumbered after the
///   ones already present and appends its binds, so prefixes and query builders compose; so does
///   ``append(_:)``.
public struct PostgresStatement: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The SQL text with its numbered placeholders, as sent to the server.
    public private(set) var sql: String
    /// The bound parameters, in placeholder order.
    public private(set) var binds: [PostgresValue]
    /// The text between placeholders: `pieces[i]` comes before placeholder `i + 1`, and the last piece
    /// ends the statement (always `binds.count + 1` pieces for interpolated statements), so a fragment's
    /// placeholders can be renumbered when it is spliced into another statement.
    private var pieces: [String]

    /// A statement of SQL text alone.
    public init(stringLiteral sql: String) {
        self.sql = sql
        self.binds = []
        self.pieces = [sql]
    }

    public init(stringInterpolation: StringInterpolation) {
        self = stringInterpolation.statement
    }

    /// The SQL text only; bound values are never part of a statement's description (they may be
    /// personal data or secrets).
    public var description: String { sql }

    /// Appends `other` after this statement's text, renumbering its placeholders after this one's.
    public mutating func append(_ other: PostgresStatement) {
        let offset = binds.count
        pieces[pieces.count - 1] += other.pieces[0]
        sql += other.pieces[0]
        for (index, piece) in other.pieces.dropFirst().enumerated() {
            sql += "$\(offset + index + 1)" + piece
            pieces.append(piece)
        }
        binds += other.binds
    }

    /// Appends SQL text without placeholders (what `append` does with a statement of text alone,
    /// without building one: a statement's literal segments are appended once per call).
    private mutating func appendText(_ text: String) {
        sql += text
        pieces[pieces.count - 1] += text
    }

    /// `lhs` followed by `rhs`, with `rhs`'s placeholders renumbered.
    public static func + (lhs: PostgresStatement, rhs: PostgresStatement) -> PostgresStatement {
        var statement = lhs
        statement.append(rhs)
        return statement
    }

    /// `fragments` one after another, separated by `separator` (e.g. conditions joined by `" AND "`).
    public static func joined(_ fragments: some Sequence<PostgresStatement>, separator: String) -> PostgresStatement {
        var statement: PostgresStatement = ""
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { statement.append(PostgresStatement(stringLiteral: separator)) }
            statement.append(fragment)
        }
        return statement
    }

    /// Collects a statement's SQL and binds as the compiler walks an interpolated literal.
    public struct StringInterpolation: StringInterpolationProtocol {
        fileprivate var statement = PostgresStatement(stringLiteral: "")

        public init(literalCapacity: Int, interpolationCount: Int) {
            statement.sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            statement.binds.reserveCapacity(interpolationCount)
        }

        /// SQL text.
        public mutating func appendLiteral(_ literal: String) {
            statement.appendText(literal)
        }

        /// Binds `value` as the next placeholder.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            appendBind(value.postgresValue)
        }

        /// Binds `value` as the next placeholder: a NULL of the wrapped type when it is `nil`.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            appendBind(value.postgresValue)
        }

        /// Splices trusted SQL text from code (a table or column name, a fixed clause), never input.
        public mutating func appendInterpolation(unescaped sql: String) {
            statement.appendText(sql)
        }

        private mutating func appendBind(_ value: PostgresValue) {
            statement.binds.append(value)
            statement.sql.append("$")
            statement.sql.append(String(statement.binds.count))
            statement.pieces.append("")
        }

        /// Splices another statement, renumbering its placeholders and appending its binds.
        public mutating func appendInterpolation(_ fragment: PostgresStatement) {
            statement.append(fragment)
        }
    }
}
