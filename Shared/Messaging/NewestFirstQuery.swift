import Foundation
import Postgres

/// A newest-first listing of rows ordered by `(<time column>, id)`, filtered by bound conditions and
/// paged by a ``ListCursor``: the admin lists of dead letters, stored payment events and sagas.
///
/// The select prefix and the column names are SQL written in code; every value is bound.
public struct NewestFirstQuery: Sendable {
    private let select: PostgresStatement
    private let timeColumn: String
    private let idColumn: String
    private var conditions: [PostgresStatement] = []

    /// `select` is `SELECT ... FROM table` (or a join) with no `WHERE`; `timeColumn` orders the rows
    /// with `idColumn`. Both column names are SQL from code, never input.
    public init(select: PostgresStatement, timeColumn: String, idColumn: String = "id") {
        self.select = select
        self.timeColumn = timeColumn
        self.idColumn = idColumn
    }

    /// Keeps rows whose `column` equals `value`, when a value is given.
    public mutating func equal(_ column: String, _ value: (any PostgresEncodable)?) {
        guard let value else { return }
        conditions.append("\(unescaped: column) = \(value)")
    }

    /// Keeps rows whose `column` is at or before `instant`, when one is given.
    public mutating func notAfter(_ column: String, _ instant: Date?) {
        guard let instant else { return }
        conditions.append("\(unescaped: column) <= \(instant)")
    }

    /// Keeps rows whose time lies in `[from, until)`, each bound when given.
    public mutating func time(from: Date?, until: Date?) {
        if let from { conditions.append("\(unescaped: timeColumn) >= \(from)") }
        if let until { conditions.append("\(unescaped: timeColumn) < \(until)") }
    }

    /// The statement for the page after `cursor` (or the first) of at most `limit` rows, plus one row
    /// that tells whether another page follows.
    func statement(after cursor: ListCursor?, limit: Int) -> PostgresStatement {
        var conditions = self.conditions
        if let cursor {
            conditions.append("(\(unescaped: timeColumn), \(unescaped: idColumn)) < (\(cursor.createdAt), \(cursor.id))")
        }
        var statement = select
        if !conditions.isEmpty { statement.append(" WHERE " + PostgresStatement.joined(conditions, separator: " AND ")) }
        statement.append(" ORDER BY \(unescaped: timeColumn) DESC, \(unescaped: idColumn) DESC LIMIT \(limit + 1)")
        return statement
    }

    /// The page after `cursor` (or the first), at most `limit` rows, and the cursor of the next page
    /// (nil on the last). `position` gives a row's time and id.
    public func page<Row>(
        on postgres: PostgresClient, after cursor: ListCursor?, limit: Int, decode: (PostgresRow) throws -> Row,
        position: (Row) -> ListCursor
    ) async throws -> (rows: [Row], nextCursor: String?) {
        var rows = try await postgres.query(statement(after: cursor, limit: limit)).map(decode)
        var next: String?
        if rows.count > limit {
            rows.removeLast()
            next = rows.last.map { position($0).description }
        }
        return (rows, next)
    }
}
