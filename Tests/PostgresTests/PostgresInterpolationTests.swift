import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Interpolated statements: placeholders, fragments, NULLs, and errors that name their statement")
struct PostgresInterpolationTests {
    @Test("each interpolated value becomes the next placeholder and its bind, in order")
    func numbering() {
        let id = 7
        let name = "seven"
        let statement: PostgresStatement = "SELECT * FROM items WHERE id = \(id) AND name = \(name) OR id > \(id)"
        #expect(statement.sql == "SELECT * FROM items WHERE id = $1 AND name = $2 OR id > $3")
        #expect(statement.binds.map(\.type) == [.int8, .text, .int8])
        #expect(statement.binds[1].bytes == Array("seven".utf8))
        let plain: PostgresStatement = "SELECT 1"
        #expect(plain.sql == "SELECT 1")
        #expect(plain.binds.isEmpty)
    }

    @Test("a spliced fragment's placeholders are renumbered after the ones before it, however deeply nested")
    func nestedFragments() {
        let innermost: PostgresStatement = "c = \(3) AND d = \(4)"
        let inner: PostgresStatement = "b = \(2) AND (\(innermost))"
        let statement: PostgresStatement = "SELECT \(1) WHERE \(inner) AND e = \(5)"
        #expect(statement.sql == "SELECT $1 WHERE b = $2 AND (c = $3 AND d = $4) AND e = $5")
        #expect(statement.binds.map { $0.bytes?.last } == [1, 2, 3, 4, 5])

        var built: PostgresStatement = "SELECT id FROM items WHERE id > \(10)"
        built.append(" AND \(inner)")
        built.append(" LIMIT \(20)")
        #expect(built.sql == "SELECT id FROM items WHERE id > $1 AND b = $2 AND (c = $3 AND d = $4) LIMIT $5")
        #expect(built.binds.map { $0.bytes?.last } == [10, 2, 3, 4, 20])

        let conditions: [PostgresStatement] = ["a = \(1)", "b = \(2)", "c = \(3)"]
        let joined = "SELECT 1 WHERE " + PostgresStatement.joined(conditions, separator: " AND ")
        #expect(joined.sql == "SELECT 1 WHERE a = $1 AND b = $2 AND c = $3")
        #expect(PostgresStatement.joined([], separator: " AND ").sql == "")
    }

    @Test("renumbering finds a fragment's placeholders by position: multi-byte text, a literal $, two-digit numbers")
    func renumberingByPosition() {
        let values: [PostgresStatement] = (1...12).map { "v\(unescaped: String($0)) = \($0)" }
        let twelve = PostgresStatement.joined(values, separator: " AND ")
        let fragment: PostgresStatement = "name = 'café $1 ünï' AND \(unescaped: "x = '$2'") AND \(twelve)"
        var statement: PostgresStatement = "SELECT 'ø' WHERE a = \(0) AND "
        statement.append(fragment)
        statement.append(" OR é = \(13)")
        func expected(after offset: Int) -> String {
            "SELECT 'ø' WHERE a = $\(offset + 1) AND name = 'café $1 ünï' AND x = '$2' AND "
                + (1...12).map { "v\($0) = $\(offset + $0 + 1)" }.joined(separator: " AND ") + " OR é = $\(offset + 14)"
        }
        #expect(statement.sql == expected(after: 0))
        #expect(statement.binds.map { $0.bytes?.last } == (0...13).map { UInt8($0) })
        // Splicing the result again renumbers all fourteen, the two-digit ones too.
        let again: PostgresStatement = "\(100) \(statement)"
        #expect(again.sql == "$1 " + expected(after: 1))
        #expect(again.binds.map { $0.bytes?.last } == [100] + (0...13).map { UInt8($0) })
    }

    @Test("composed statements run against the server with the right values in the right places")
    func composedStatementsRun() async throws {
        let client = try TestDatabase.client(url: try await TestDatabase.create(), connections: 1)
        defer { Task { await client.shutdown() } }
        let fragment: PostgresStatement = "\(20) - \(5)"
        let rows = try await client.query("SELECT \(1000) + (\(fragment)), \("a" as String) || \("b" as String)")
        #expect(try rows[0].decode(Int.self, at: 0) == 1015)
        #expect(try rows[0].decode(String.self, at: 1) == "ab")
    }

    @Test("nil binds as a NULL of the wrapped type")
    func nilBinds() async throws {
        let client = try TestDatabase.client(url: try await TestDatabase.create(), connections: 1)
        defer { Task { await client.shutdown() } }
        let missingText: String? = nil
        let missingTime: Date? = nil
        let present: Int? = 5
        let statement: PostgresStatement =
            "SELECT \(missingText) IS NULL, pg_typeof(\(missingText))::text, pg_typeof(\(missingTime))::text, \(present)"
        #expect(statement.binds.map(\.type) == [.text, .text, .timestamptz, .int8])
        #expect(statement.binds[0].bytes == nil)
        let rows = try await client.query(statement)
        #expect(try rows[0].decode(Bool.self, at: 0))
        #expect(try rows[0].decode(String.self, at: 1) == "text")
        #expect(try rows[0].decode(String.self, at: 2) == "timestamp with time zone")
        #expect(try rows[0].decode(Int.self, at: 3) == 5)
    }

    @Test("unescaped text is spliced as SQL, with no placeholder and no bind")
    func unescaped() async throws {
        let client = try TestDatabase.client(url: try await TestDatabase.create(), connections: 1)
        defer { Task { await client.shutdown() } }
        let table = "public.things"
        try await client.query("CREATE TABLE \(unescaped: table) (id int)")
        let insert: PostgresStatement = "INSERT INTO \(unescaped: table) (id) VALUES (\(Int32(4)))"
        #expect(insert.sql == "INSERT INTO public.things (id) VALUES ($1)")
        #expect(insert.binds.count == 1)
        try await client.query(insert)
        #expect(try await client.query("SELECT count(*) FROM \(unescaped: table)")[0].decode(Int.self, at: 0) == 1)
    }

    @Test("an error carries the failing statement's SQL and the call site, never the bound values")
    func errorNamesStatementAndCallSite() async throws {
        let client = try TestDatabase.client(url: try await TestDatabase.create(), connections: 1)
        defer { Task { await client.shutdown() } }
        try await client.query("CREATE TABLE secrets (token text PRIMARY KEY)")
        let secret = "sk_live_do-not-log-me"
        try await client.query("INSERT INTO secrets (token) VALUES (\(secret))")

        // A single statement.
        // (Outside `#expect`: a call inside a macro's argument reports the macro's line.)
        var callLine = #line + 2
        let single = await failure {
            try await client.query("INSERT INTO secrets (token) VALUES (\(secret))")
        }
        #expect(single?.code == .uniqueViolation)
        #expect(single?.statement == "INSERT INTO secrets (token) VALUES ($1)")
        #expect(single?.location == "PostgresTests/PostgresInterpolationTests.swift:\(callLine)")
        let logged = single.map { "\($0)" } ?? ""
        #expect(logged.contains("INSERT INTO secrets (token) VALUES ($1)"))
        #expect(logged.contains("PostgresInterpolationTests.swift:\(callLine)"))
        #expect(!logged.contains(secret))
        #expect(single.map { String(reflecting: $0) }?.contains(secret) == false)

        // Inside a transaction: the statement's own call site.
        callLine = #line + 3
        let inTransaction = await failure {
            try await client.withTransaction { transaction in
                _ = try transaction.query("SELECT 1 FROM no_such_table WHERE token = \(secret)")
            }
        }
        #expect(inTransaction?.statement == "SELECT 1 FROM no_such_table WHERE token = $1")
        #expect(inTransaction?.location == "PostgresTests/PostgresInterpolationTests.swift:\(callLine)")

        // A pipeline: the statement that failed, not the first one.
        callLine = #line + 2
        let pipelined = await failure {
            try await client.pipeline(["SELECT \(1)", "INSERT INTO secrets (token) VALUES (\(secret)) RETURNING token", "SELECT \(2)"])
        }
        #expect(pipelined?.statement == "INSERT INTO secrets (token) VALUES ($1) RETURNING token")
        #expect(pipelined?.location == "PostgresTests/PostgresInterpolationTests.swift:\(callLine)")
        #expect(pipelined.map { "\($0)" }?.contains(secret) == false)

        // A failed commit (a deferred constraint): COMMIT and the transaction's call site.
        try await client.query("CREATE TABLE deferred (id int, UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)")
        callLine = #line + 2
        let commit = await failure {
            try await client.withTransaction { transaction in
                _ = try transaction.query("INSERT INTO deferred (id) VALUES (\(Int32(1))), (\(Int32(1)))")
            }
        }
        #expect(commit?.code == .uniqueViolation)
        #expect(commit?.statement == "COMMIT")
        #expect(commit?.location == "PostgresTests/PostgresInterpolationTests.swift:\(callLine)")
    }

    /// The `PostgresError` `body` throws (an issue is recorded when it throws nothing or something else).
    private func failure(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> PostgresError? {
        do {
            try await body()
            Issue.record("expected a PostgresError", sourceLocation: sourceLocation)
        } catch let error as PostgresError {
            return error
        } catch {
            Issue.record("expected a PostgresError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }
}
