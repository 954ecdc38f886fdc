/// The result of one statement: its rows (for queries) and the number of rows it affected.
///
/// Values are plain Swift data copied out of libpq, so results are `Sendable` and outlive the connection.
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// The result's column names, in order.
    public let columns: [String]
    let columnTypes: [PostgresType]
    let rows: [PostgresRow]
    /// Rows inserted, updated, deleted, copied or selected, as the server reported (0 when it did not).
    public let affectedRows: Int

    init(columns: [String], columnTypes: [PostgresType], rows: [PostgresRow], affectedRows: Int) {
        self.columns = columns
        self.columnTypes = columnTypes
        self.rows = rows
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> PostgresRow { rows[position] }
}

/// One result row. Decode columns by index or name: `try row.decode(Int.self, at: 0)`,
/// `try row.decode(String?.self, named: "note")`.
public struct PostgresRow: Sendable {
    let columns: [String]
    let columnTypes: [PostgresType]
    let storage: [UInt8]
    /// Each column's byte range in `storage`, nil for SQL NULL.
    let ranges: [Range<Int>?]

    /// The number of columns.
    public var count: Int { ranges.count }

    /// True when column `index` is NULL.
    public func isNull(at index: Int) -> Bool { ranges[index] == nil }

    /// Decodes a non-NULL column; throws ``PostgresError`` with code `.decoding` on NULL or a type mismatch.
    public func decode<T: PostgresDecodable>(_: T.Type, at index: Int) throws(PostgresError) -> T {
        guard index >= 0, index < ranges.count else { throw decodingError("no column at index \(index)") }
        guard let range = ranges[index] else { throw decodingError("column \(columns[index]) is NULL") }
        do {
            return try T(postgresBytes: storage[range], type: columnTypes[index])
        } catch {
            throw decodingError("column \(columns[index]): \(error)")
        }
    }

    /// Decodes a column that may be NULL.
    public func decode<T: PostgresDecodable>(_: T?.Type, at index: Int) throws(PostgresError) -> T? {
        guard index >= 0, index < ranges.count else { throw decodingError("no column at index \(index)") }
        if ranges[index] == nil { return nil }
        return try decode(T.self, at: index)
    }

    /// Decodes a non-NULL column by name.
    public func decode<T: PostgresDecodable>(_ type: T.Type, named name: String) throws(PostgresError) -> T {
        try decode(type, at: try index(of: name))
    }

    /// Decodes a column that may be NULL, by name.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, named name: String) throws(PostgresError) -> T? {
        try decode(type, at: try index(of: name))
    }

    private func index(of name: String) throws(PostgresError) -> Int {
        guard let index = columns.firstIndex(of: name) else { throw decodingError("no column named \(name)") }
        return index
    }

    private func decodingError(_ message: String) -> PostgresError {
        PostgresError(code: .decoding, message: message)
    }
}
