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
    /// Where each placeholder starts in ``sql``, in UTF-8 code units: placeholder `$i` at
    /// `placeholders[i - 1]`. Enough to renumber a fragment's placeholders when it is spliced into
    /// another statement, without keeping its text a second time in pieces (one allocation per
    /// literal segment of every statement built).
    private var placeholders: [Int]

    /// A statement of SQL text alone.
    public init(stringLiteral sql: String) {
        self.sql = sql
        self.binds = []
        self.placeholders = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self = stringInterpolation.statement
    }

    /// The SQL text only; bound values are never part of a statement's description (they may be
    /// personal data or secrets).
    public var description: String { sql }

    /// Appends `other` after this statement's text, renumbering its placeholders after this one's.
    public mutating func append(_ other: PostgresStatement) {
        guard !other.placeholders.isEmpty else {
            sql += other.sql
            return
        }
        let base = binds.count
        let text = other.sql.utf8
        // Offsets into a native string's UTF-8 are constant-time, and every placeholder starts and
        // ends on a character boundary (`$` and digits are ASCII).
        func position(_ offset: Int) -> String.Index { text.index(text.startIndex, offsetBy: offset) }
        var cursor = 0
        for (index, start) in other.placeholders.enumerated() {
            sql += other.sql[position(cursor)..<position(start)]
            appendPlaceholder(base + index + 1)
            // `$` and the fragment's own number, which is `index + 1`.
            cursor = start + 1 + String(index + 1).utf8.count
        }
        sql += other.sql[position(cursor)...]
        binds += other.binds
    }

    /// Appends placeholder `$number` to the text and records where it starts.
    private mutating func appendPlaceholder(_ number: Int) {
        placeholders.append(sql.utf8.count)
        sql.append("$")
        sql.append(String(number))
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
            statement.placeholders.reserveCapacity(interpolationCount)
        }

        /// SQL text.
        public mutating func appendLiteral(_ literal: String) {
            statement.sql += literal
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
            statement.sql += sql
        }

        private mutating func appendBind(_ value: PostgresValue) {
            statement.binds.append(value)
            statement.appendPlaceholder(statement.binds.count)
        }

        /// Splices another statement, renumbering its placeholders and appending its binds.
        public mutating func appendInterpolation(_ fragment: PostgresStatement) {
            statement.append(fragment)
        }
    }
}
