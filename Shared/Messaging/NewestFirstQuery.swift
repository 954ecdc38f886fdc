import Foundation
import Postgres

/// A newest-first listing of rows ordered by `(<time column>, id)`, filtered by bound conditions and
/// paged by a ``ListCursor``: the admin lists of dead letters and stored payment events.
///
/// Only the fixed column names the caller passes and numbered placeholders are spliced into the
/// SQL; every value is bound.
public struct NewestFirstQuery: Sendable {
    private let select: String
    private let timeColumn: String
    private let idColumn: String
    private var conditions: [String] = []
    private var binds: [any PostgresEncodable] = []

    /// `select` is `SELECT ... FROM table` (or a join) with no `WHERE`; `timeColumn` orders the rows
    /// with `idColumn`.
    public init(select: String, timeColumn: String, idColumn: String = "id") {
        self.select = select
        self.timeColumn = timeColumn
        self.idColumn = idColumn
    }

    /// Keeps rows whose `column` equals `value`, when a value is given.
    public mutating func equal(_ column: String, _ value: (any PostgresEncodable)?) {
        guard let value else { return }
        add("\(column) = \(bind(value))")
    }

    /// Keeps rows whose `column` is at or before `instant`, when one is given.
    public mutating func notAfter(_ column: String, _ instant: Date?) {
        guard let instant else { return }
        add("\(column) <= \(bind(instant))")
    }

    /// Keeps rows whose time lies in `[from, until)`, each bound when given.
    public mutating func time(from: Date?, until: Date?) {
        if let from { add("\(timeColumn) >= \(bind(from))") }
        if let until { add("\(timeColumn) < \(bind(until))") }
    }

    /// The page after `cursor` (or the first), at most `limit` rows, and the cursor of the next page
    /// (nil on the last). `position` gives a row's time and id.
    public func page<Row>(
        on postgres: PostgresClient, after cursor: ListCursor?, limit: Int, decode: (PostgresRow) throws -> Row,
        position: (Row) -> ListCursor
    ) async throws -> (rows: [Row], nextCursor: String?) {
        var query = self
        if let cursor { query.add("(\(timeColumn), \(idColumn)) < (\(query.bind(cursor.createdAt)), \(query.bind(cursor.id)))") }
        let limitPlaceholder = query.bind(limit + 1)
        let whereClause = query.conditions.isEmpty ? "" : " WHERE " + query.conditions.joined(separator: " AND ")
        let sql = select + whereClause + " ORDER BY \(timeColumn) DESC, \(idColumn) DESC LIMIT \(limitPlaceholder)"
        var rows = try await postgres.query(sql, query.binds).map(decode)
        var next: String?
        if rows.count > limit {
            rows.removeLast()
            next = rows.last.map { position($0).description }
        }
        return (rows, next)
    }

    private mutating func add(_ condition: String) {
        conditions.append(condition)
    }

    private mutating func bind(_ value: any PostgresEncodable) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }
}
