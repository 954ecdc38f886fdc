import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("Postgres statements, transactions and types")
struct PostgresStatementTests {
    let client: PostgresClient

    init() async throws {
        client = try TestDatabase.client(url: try await TestDatabase.create(), connections: 4)
        try await client.query("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, CHECK (id >= 0))")
    }

    @Test("a transaction whose body throws leaves no rows")
    func rollbackOnThrow() async throws {
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await client.withTransaction { transaction in
                try transaction.query("INSERT INTO items (id, name) VALUES (\(1), \("first" as String))")
                try transaction.query("INSERT INTO items (id, name) VALUES (\(2), \("second" as String))")
                throw Boom()
            }
        }
        let count = try await client.query("SELECT count(*) FROM items")
        #expect(try count[0].decode(Int.self, at: 0) == 0)
        // The connection is usable afterwards, outside any transaction.
        try await client.query("INSERT INTO items (id, name) VALUES (\(3), \("third" as String))")
        let after = try await client.query("SELECT count(*) FROM items")
        #expect(try after[0].decode(Int.self, at: 0) == 1)
    }

    @Test("a time beyond Int64 microseconds binds as infinity instead of trapping")
    func extremeDates() async throws {
        let rows = try await client.query(
            """
            SELECT \(Date(timeIntervalSince1970: 1e300))::timestamptz = 'infinity',
                   \(Date(timeIntervalSince1970: -1e300))::timestamptz = '-infinity',
                   \(Date(timeIntervalSince1970: 0))::timestamptz = '1970-01-01T00:00:00Z'
            """)
        #expect(try rows[0].decode(Bool.self, at: 0))
        #expect(try rows[0].decode(Bool.self, at: 1))
        #expect(try rows[0].decode(Bool.self, at: 2))
    }

    @Test("a unique violation surfaces as its typed code with the constraint name")
    func uniqueViolation() async throws {
        try await client.query("INSERT INTO items (id, name) VALUES (\(10), \("dup" as String))")
        let error = await #expect(throws: PostgresError.self) {
            try await client.withTransaction { transaction in
                try transaction.query("INSERT INTO items (id, name) VALUES (\(11), \("dup" as String))")
            }
        }
        #expect(error?.code == .uniqueViolation)
        #expect(error?.sqlState == "23505")
        #expect(error?.constraint == "items_name_key")
        let check = await #expect(throws: PostgresError.self) {
            try await client.query("INSERT INTO items (id, name) VALUES (\(-1), \("negative" as String))")
        }
        #expect(check?.code == .checkViolation)
    }

    @Test("a failing commit (serialization failure) is typed and rolls back")
    func serializationFailure() async throws {
        try await client.query("CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL)")
        try await client.query("INSERT INTO counters VALUES (1, 0)")
        // Two serializable transactions read then write the same row: one must fail.
        let outcomes = await withTaskGroup(of: PostgresError?.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do {
                        try await client.withTransaction(isolation: .serializable) { transaction in
                            let rows = try transaction.query("SELECT value FROM counters WHERE id = 1")
                            let value = try rows[0].decode(Int.self, at: 0)
                            // Hold the snapshot long enough for the other transaction to read too.
                            try transaction.query("SELECT pg_sleep(0.3)")
                            try transaction.query("UPDATE counters SET value = \(Int32(value + 1)) WHERE id = 1")
                        }
                        return nil
                    } catch let error as PostgresError {
                        return error
                    } catch {
                        return PostgresError(code: .server, message: "\(error)")
                    }
                }
            }
            return await group.reduce(into: [PostgresError?]()) { $0.append($1) }
        }
        let failures = outcomes.compactMap { $0 }
        #expect(failures.count == 1)
        #expect(failures.first?.code == .serializationFailure)
        #expect(failures.first?.isTransient == true)
        let value = try await client.query("SELECT value FROM counters WHERE id = 1")
        #expect(try value[0].decode(Int32.self, at: 0) == 1)
    }

    @Test("queued writes run in order with the transaction's next round trip and commit with it")
    func queuedWritesKeepTheirOrder() async throws {
        let seen = try await client.withTransaction { transaction in
            try transaction.enqueue(["INSERT INTO items (id, name) VALUES (\(30), \("queued first" as String))"])
            // The next statement carries the queued insert ahead of itself: it sees the row.
            let rows = try transaction.query("SELECT count(*) FROM items WHERE id = \(30)")
            try transaction.enqueue([
                "INSERT INTO items (id, name) VALUES (\(31), \("queued second" as String))",
                "UPDATE items SET name = \("renamed" as String) WHERE id = \(31)",
            ])
            return try rows[0].decode(Int.self, at: 0)
        }
        #expect(seen == 1)
        // The two statements queued last went with the COMMIT, in order.
        let names = try await client.query("SELECT name FROM items WHERE id IN (\(30), \(31)) ORDER BY id").map { try $0.decode(String.self, at: 0) }
        #expect(names == ["queued first", "renamed"])
    }

    @Test("a queued statement is sent later; its error fails the commit, names the statement, and keeps nothing of the transaction")
    func queuedWriteFailsTheCommit() async throws {
        try await client.query("INSERT INTO items (id, name) VALUES (\(40), \("taken" as String))")
        let reachedTheEnd = Mutex(false)
        let error = await #expect(throws: PostgresError.self) {
            try await client.withTransaction { transaction in
                try transaction.query("INSERT INTO items (id, name) VALUES (\(41), \("sent at once" as String))")
                try transaction.enqueue(["INSERT INTO items (id, name) VALUES (\(42), \("taken" as String))"])
                // Nothing was sent yet, so nothing failed yet.
                reachedTheEnd.withLock { $0 = true }
            }
        }
        #expect(reachedTheEnd.withLock { $0 })
        #expect(error?.code == .uniqueViolation)
        #expect(error?.constraint == "items_name_key")
        #expect(error?.statement?.contains("VALUES ($1, $2)") == true)
        #expect(try await client.query("SELECT count(*) FROM items WHERE id IN (\(41), \(42))")[0].decode(Int.self, at: 0) == 0)
        // Every connection of the pool is usable afterwards, outside any transaction.
        for id in 43...46 {
            try await client.query("INSERT INTO items (id, name) VALUES (\(id), \("after \(id)" as String))")
        }
        #expect(try await client.query("SELECT count(*) FROM items WHERE id BETWEEN 43 AND 46")[0].decode(Int.self, at: 0) == 4)
    }

    @Test("a body that goes on after a failed statement does not commit: the server's ROLLBACK at COMMIT throws")
    func failedTransactionDoesNotCommit() async throws {
        try await client.query("INSERT INTO items (id, name) VALUES (\(50), \("taken" as String))")
        for queuesAWrite in [false, true] {
            let error = await #expect(throws: PostgresError.self) {
                try await client.withTransaction { transaction in
                    try transaction.query("INSERT INTO items (id, name) VALUES (\(51), \("kept?" as String))")
                    _ = try? transaction.query("INSERT INTO items (id, name) VALUES (\(52), \("taken" as String))")
                    if queuesAWrite {
                        try transaction.enqueue(["INSERT INTO items (id, name) VALUES (\(53), \("queued" as String))"])
                    }
                }
            }
            if queuesAWrite {
                // The queued insert is refused in the failed transaction (SQLSTATE 25P02).
                #expect(error?.sqlState == "25P02")
            } else {
                #expect(error?.statement == "COMMIT")
            }
            #expect(try await client.query("SELECT count(*) FROM items WHERE id IN (\(51), \(53))")[0].decode(Int.self, at: 0) == 0)
        }
    }

    @Test("column types round-trip through bound parameters")
    func typesRoundTrip() async throws {
        let id = UUID()
        let instant = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let binary: [UInt8] = [0, 1, 2, 0, 255, 0]
        let rows = try await client.query(
            """
            SELECT \(Int.max)::bigint, \(Int32.min)::int, \(Int16(-7))::smallint, \("héllo, wörld ✓" as String)::text, \(true)::bool,
                   \(id)::uuid, \(instant)::timestamptz, \(PostgresJSONB(string: #"{"a": [1, 2], "b": "x"}"#))::jsonb,
                   \(Data(binary))::bytea, \(["a", "b,c", "\"q\"", ""])::text[], \([id, id])::uuid[], \([1, -2, 3])::bigint[],
                   \(String?.none)::text, \([String]())::text[]
            """
        )
        let row = rows[0]
        #expect(try row.decode(Int.self, at: 0) == Int.max)
        #expect(try row.decode(Int32.self, at: 1) == Int32.min)
        #expect(try row.decode(Int.self, at: 2) == -7)
        #expect(try row.decode(String.self, at: 3) == "héllo, wörld ✓")
        #expect(try row.decode(Bool.self, at: 4) == true)
        #expect(try row.decode(UUID.self, at: 5) == id)
        #expect(try abs(row.decode(Date.self, at: 6).timeIntervalSince(instant)) < 0.000_001)
        let json = try row.decode(PostgresJSONB.self, at: 7)
        #expect(try json.decode([String: JSONProbe].self)["b"] == .string("x"))
        #expect(try row.decode(Data.self, at: 8) == Data(binary))
        #expect(try row.decode([String].self, at: 9) == ["a", "b,c", "\"q\"", ""])
        #expect(try row.decode([UUID].self, at: 10) == [id, id])
        #expect(try row.decode([Int].self, at: 11) == [1, -2, 3])
        #expect(try row.decode(String?.self, at: 12) == nil)
        #expect(row.isNull(at: 12))
        #expect(try row.decode([String].self, at: 13) == [])
        #expect(throws: PostgresError.self) { try row.decode(String.self, at: 12) }
        #expect(throws: PostgresError.self) { try row.decode(UUID.self, at: 3) }
        #expect(throws: PostgresError.self) { try row.decode(Int.self, named: "nope") }
    }

    @Test("timestamps are stored as the UTC instant whatever the input offset")
    func timestampsAreUTC() async throws {
        let rows = try await client.query("SELECT '2026-03-08T07:30:00-05:00'::timestamptz, now()::text")
        #expect(try rows[0].decode(Date.self, at: 0) == Date(timeIntervalSince1970: 1_772_973_000))
        #expect(try rows[0].decode(String.self, at: 1).hasSuffix("+00"))
    }

    @Test("a pipeline of 1,000 inserts commits atomically; a failing statement rolls the batch back")
    func pipeline() async throws {
        try await client.query("CREATE TABLE batch (id int PRIMARY KEY)")
        let statements = (0..<1000).map { index -> PostgresStatement in "INSERT INTO batch (id) VALUES (\(Int32(index)))" }
        let results = try await client.pipeline(statements)
        #expect(results.count == 1000)
        #expect(results.allSatisfy { $0.affectedRows == 1 })
        let failing: [PostgresStatement] = [5000, 7, 5001].map { (id: Int32) in "INSERT INTO batch (id) VALUES (\(id))" }
        let error = await #expect(throws: PostgresError.self) { try await client.pipeline(failing) }
        #expect(error?.code == .uniqueViolation)
        let count = try await client.query("SELECT count(*), max(id) FROM batch")
        #expect(try count[0].decode(Int.self, at: 0) == 1000)
        #expect(try count[0].decode(Int32.self, at: 1) == 999)
        // The connection left pipeline mode cleanly.
        try await client.query("INSERT INTO batch (id) VALUES (\(Int32(5002)))")
    }

    @Test("pipelined statements are prepared once per session, also when a pipeline fails after preparing")
    func pipelinePreparesOnce() async throws {
        let single = try TestDatabase.client(url: try await TestDatabase.create(), connections: 1)
        defer { Task { await single.shutdown() } }
        try await single.query("CREATE TABLE seen (id int PRIMARY KEY)")
        @Sendable func insert(_ id: Int32) -> PostgresStatement { "INSERT INTO seen (id) VALUES (\(id))" }
        let preparedCount: PostgresStatement = "SELECT count(*) FROM pg_prepared_statements"
        try await single.pipeline([insert(1), insert(2)])
        let afterFirst = try await single.query(preparedCount)[0].decode(Int.self, at: 0)
        for round in 0..<5 {
            try await single.pipeline([insert(Int32(10 + round))])
        }
        #expect(try await single.query(preparedCount)[0].decode(Int.self, at: 0) == afterFirst, "no statement was prepared again")
        // A new statement prepared in a pipeline that then fails: the next pipelines still work.
        @Sendable func upsert(_ id: Int32) -> PostgresStatement { "INSERT INTO seen (id) VALUES (\(id)) ON CONFLICT (id) DO NOTHING" }
        await #expect(throws: PostgresError.self) {
            try await single.pipeline([upsert(100), insert(1)])
        }
        try await single.pipeline([upsert(100), upsert(101)])
        try await single.withTransaction { transaction in
            try transaction.pipeline([upsert(102)])
            try transaction.query(upsert(103))
        }
        #expect(try await single.query("SELECT count(*) FROM seen WHERE id >= 100")[0].decode(Int.self, at: 0) == 4)
    }

    @Test("COPY loads rows in bulk, NULLs included")
    func copy() async throws {
        try await client.query("CREATE TABLE ledger (id uuid PRIMARY KEY, amount bigint NOT NULL, note text, at timestamptz NOT NULL)")
        let now = Date()
        let rows: [[any PostgresEncodable]] = (0..<10_000).map { index in
            [UUID(), Int64(index), index.isMultiple(of: 2) ? String?.some("n\(index)") : String?.none, now]
        }
        let copied = try await client.withConnection { connection in
            try await connection.copy(into: "public.ledger", columns: ["id", "amount", "note", "at"], rows: rows)
        }
        #expect(copied == 10_000)
        let summary = try await client.query("SELECT count(*), sum(amount)::bigint, count(note) FROM ledger")
        #expect(try summary[0].decode(Int.self, at: 0) == 10_000)
        #expect(try summary[0].decode(Int.self, at: 1) == 49_995_000)
        #expect(try summary[0].decode(Int.self, at: 2) == 5_000)
        let wrongType = await #expect(throws: PostgresError.self) {
            try await client.withConnection { connection in
                try await connection.copy(into: "ledger", columns: ["id", "amount", "note", "at"], rows: [[UUID(), "text", "x", now]])
            }
        }
        #expect(wrongType?.code == .server)
    }

    @Test("statement_timeout cancels long statements with a typed error")
    func statementTimeout() async throws {
        var configuration = try PostgresClient.Configuration(url: client.configuration.url)
        configuration.statementTimeout = .milliseconds(200)
        let impatient = PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { await impatient.shutdown() } }
        let error = await #expect(throws: PostgresError.self) { try await impatient.query("SELECT pg_sleep(2)") }
        #expect(error?.code == .queryCanceled)
        let rows = try await impatient.query("SELECT 1")
        #expect(try rows[0].decode(Int.self, at: 0) == 1)
    }
}

/// A minimal JSON value for checking decoded documents.
enum JSONProbe: Decodable, Equatable {
    case string(String)
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = (try? container.decode(String.self)).map(JSONProbe.string) ?? .other
    }
}
