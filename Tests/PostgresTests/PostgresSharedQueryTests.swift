import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Postgres shared connections")
struct PostgresSharedQueryTests {
    private func client(shared: Int) throws -> PostgresClient {
        var configuration = try PostgresClient.Configuration(url: TestEnvironment.databaseURL())
        configuration.maximumConnections = 2
        configuration.sharedConnections = shared
        return PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
    }

    /// Creates a table of its own for one test (`PREFIX_<32 hex digits>`, with COLUMNS) and returns its name.
    private func scratchTable(_ prefix: String, columns: String, on client: PostgresClient) async throws -> String {
        let table = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try await client.query("CREATE TABLE \(unescaped: table) (\(unescaped: columns))")
        return table
    }

    @Test("300 concurrent callers on one shared connection share round trips; each gets its own rows or its own error")
    func callersShareRoundTrips() async throws {
        let client = try client(shared: 1)
        defer { Task { await client.shutdown() } }
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<300 {
                group.addTask {
                    // Every fifth caller divides by zero: its statement fails, no other.
                    let divisor = Int64(index % 5)
                    do {
                        let rows = try await client.sharedQuery("SELECT \(Int64(index))::int8 * 1000 / \(divisor)::int8, \("caller \(index)")::text")
                        let quotient = try rows[0].decode(Int64.self, at: 0)
                        let label = try rows[0].decode(String.self, at: 1)
                        return divisor != 0 && quotient == Int64(index) * 1000 / divisor && label == "caller \(index)"
                    } catch let error as PostgresError {
                        return divisor == 0 && error.sqlState == "22012"
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.count == 300)
        #expect(outcomes.allSatisfy { $0 })
        let statistics = client.sharedConnectionStatistics
        #expect(statistics.statements == 300)
        #expect(statistics.roundTrips < 300, "no round trip carried two callers' statements: \(statistics)")
    }

    @Test("a unique violation in the same round trip fails only its caller: the others' rows are kept")
    func statementsCommitAlone() async throws {
        let client = try client(shared: 1)
        defer { Task { await client.shutdown() } }
        let table = try await scratchTable("shared_query", columns: "id int8 PRIMARY KEY", on: client)
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            // 100 inserts of 80 distinct ids: 20 are duplicates.
            for index in 0..<100 {
                group.addTask {
                    do {
                        try await client.sharedQuery("INSERT INTO \(unescaped: table) (id) VALUES (\(Int64(index % 80)))")
                        return 0
                    } catch let error as PostgresError where error.code == .uniqueViolation {
                        return 1
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(failures == 20)
        #expect(try await client.count("SELECT count(*) FROM \(unescaped: table)") == 80)
        try await client.query("DROP TABLE \(unescaped: table)")
    }

    @Test("shared transactions: each caller's statements are one transaction, all or nothing, its failure its own; callers share round trips")
    func sharedTransactionsAreAtomic() async throws {
        let client = try client(shared: 1)
        defer { Task { await client.shutdown() } }
        let table = try await scratchTable("shared_transaction", columns: "id int8 PRIMARY KEY, caller int8 NOT NULL", on: client)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            // 100 callers insert three rows each; every fourth caller's third row takes an id another
            // caller's first row takes, so one of the two transactions fails whole.
            for caller in 0..<100 {
                group.addTask {
                    let base = Int64(caller) * 10
                    let third = caller % 4 == 3 ? Int64(caller - 1) * 10 : base + 2
                    do {
                        let results = try await client.sharedTransaction([
                            "INSERT INTO \(unescaped: table) (id, caller) VALUES (\(base), \(Int64(caller)))",
                            "INSERT INTO \(unescaped: table) (id, caller) VALUES (\(base + 1), \(Int64(caller)))",
                            "INSERT INTO \(unescaped: table) (id, caller) VALUES (\(third), \(Int64(caller))) RETURNING caller",
                        ])
                        let returned = try results[2][0].decode(Int64.self, at: 0)
                        return results.count == 3 && returned == Int64(caller)
                    } catch let error as PostgresError where error.code == .uniqueViolation {
                        return error.statement?.contains("RETURNING caller") == true || caller % 4 == 2
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { $0 })
        // Each caller's rows are all there or none is: no caller has one or two rows.
        let partial = try await client.count(
            "SELECT count(*) FROM (SELECT caller FROM \(unescaped: table) GROUP BY caller HAVING count(*) <> 3) AS partial")
        #expect(partial == 0)
        // Of each pair competing for an id, exactly one committed.
        #expect(try await client.count("SELECT count(DISTINCT caller) FROM \(unescaped: table)") == 75)
        let statistics = client.sharedConnectionStatistics
        #expect(statistics.roundTrips < 100, "no round trip carried two callers' transactions: \(statistics)")
        try await client.query("DROP TABLE \(unescaped: table)")
    }

    @Test("units that share a round trip run together: one transaction, one WAL flush for writes, one send for reads")
    func writesCommitTogether() async throws {
        let client = try client(shared: 1)
        defer { Task { await client.shutdown() } }
        let table = try await scratchTable("shared_group", columns: "id int8 PRIMARY KEY, xid int8 NOT NULL", on: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<100 {
                group.addTask {
                    try await client.sharedQuery("INSERT INTO \(unescaped: table) (id, xid) VALUES (\(Int64(caller)), txid_current())")
                }
            }
            try await group.waitForAll()
        }
        #expect(try await client.count("SELECT count(*) FROM \(unescaped: table)") == 100)
        let transactions = try await client.count("SELECT count(DISTINCT xid) FROM \(unescaped: table)")
        let roundTrips = client.sharedConnectionStatistics.roundTrips
        #expect(transactions < 100, "every insert committed in a transaction of its own")
        #expect(transactions == roundTrips, "one transaction per round trip")
        // Reads sent together go together as well (one sync, so one write to the socket): the
        // `SELECT txid_current()`s of one round trip share a transaction.
        let readsBefore = client.sharedConnectionStatistics.roundTrips
        let reads = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<50 {
                group.addTask { try await client.sharedQuery("SELECT txid_current()")[0].decode(Int64.self, at: 0) }
            }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        let readTrips = client.sharedConnectionStatistics.roundTrips - readsBefore
        #expect(reads.count < 50, "every read ran in a transaction of its own")
        #expect(reads.count == readTrips, "one transaction per round trip")
        try await client.query("DROP TABLE \(unescaped: table)")
    }

    @Test("a unit that fails before a statement's first Parse does not break the units after it that use the statement")
    func failureBeforeAParse() async throws {
        let client = try client(shared: 1)
        defer { Task { await client.shutdown() } }
        let table = try await scratchTable("shared_parse", columns: "id int8 PRIMARY KEY", on: client)
        try await client.query("INSERT INTO \(unescaped: table) (id) VALUES (-1)")
        for round in 0..<20 {
            // A statement no connection has prepared yet: its Parse goes with the first unit that uses
            // it, after that unit's insert, which fails for every fifth caller.
            let marker = UUID().uuidString
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for caller in 0..<50 {
                    group.addTask {
                        let id = caller % 5 == 0 ? -1 : Int64(round * 100 + caller)
                        do {
                            let results = try await client.sharedTransaction([
                                "INSERT INTO \(unescaped: table) (id) VALUES (\(id))",
                                "SELECT \(Int64(caller)) + \(unescaped: String(round)) AS echo -- \(unescaped: marker)",
                            ])
                            let echo = try results[1][0].decode(Int64.self, at: 0)
                            return caller % 5 != 0 && echo == Int64(round + caller)
                        } catch let error as PostgresError where error.code == .uniqueViolation {
                            return caller % 5 == 0
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0 }, "round \(round)")
        }
        #expect(try await client.count("SELECT count(*) FROM \(unescaped: table)") == 1 + 20 * 40)
        try await client.query("DROP TABLE \(unescaped: table)")
    }

    @Test("a slow statement holds up only its own shared connection: statements sent meanwhile go to the other")
    func slowStatementDoesNotHoldUpTheOthers() async throws {
        let client = try client(shared: 2)
        defer { Task { await client.shutdown() } }
        try await client.sharedQuery("SELECT 1")
        let slow = Task {
            // Long enough that the quick statements' round trips fit in it on a loaded CI machine too
            // (where a resumed task can wait a good part of a second for a cooperative thread).
            try await client.sharedQuery("SELECT pg_sleep(5)")
            return ContinuousClock.now
        }
        try await Task.sleep(for: .milliseconds(100))
        for index in 0..<30 {
            let rows = try await client.sharedQuery("SELECT \(Int64(index))::int8")
            #expect(try rows[0].decode(Int64.self, at: 0) == Int64(index))
        }
        let quickDone = ContinuousClock.now
        let slowDone = try await slow.value
        #expect(quickDone < slowDone, "the quick statements waited behind pg_sleep")
    }

    @Test("after shutdown a shared query fails with a clear error instead of waiting")
    func closedClientFails() async throws {
        let client = try client(shared: 1)
        try await client.sharedQuery("SELECT 1")
        await client.shutdown()
        let error = await #expect(throws: PostgresError.self) { try await client.sharedQuery("SELECT 1") }
        #expect(error?.code == .poolExhausted)
        #expect(error?.message.contains("closed") == true)
    }
}
