import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("Postgres restarts")
struct PostgresRestartTests {
    @Test("after pg_ctl restart the next calls succeed without restarting the process")
    func reconnectsAfterRestart() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let client = try TestDatabase.client(url: servers.databaseURL, connections: 3)
            defer { Task { await client.shutdown() } }
            // Open every connection so all of them see the restart.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { try await client.query("SELECT pg_sleep(0.1)") } }
                try await group.waitForAll()
            }
            let before = try await client.query("SELECT pg_postmaster_start_time()::text")
            // The shared connections too.
            try await client.sharedQuery("SELECT 1")
            try await servers.restartPostgres()
            for _ in 0..<6 {
                let rows = try await client.query("SELECT pg_postmaster_start_time()::text")
                #expect(try rows[0].decode(String.self, at: 0) != before[0].decode(String.self, at: 0))
                let shared = try await client.sharedQuery("SELECT pg_postmaster_start_time()::text")
                #expect(try shared[0].decode(String.self, at: 0) != before[0].decode(String.self, at: 0))
            }
        }
    }

    @Test("while Postgres is down calls fail fast with a connection error, then recover")
    func failsWhileDownThenRecovers() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            var configuration = try PostgresClient.Configuration(url: servers.databaseURL)
            configuration.maximumConnections = 2
            let client = PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
            defer { Task { await client.shutdown() } }
            try await client.query("SELECT 1")
            try await servers.stopPostgres()
            let started = ContinuousClock.now
            let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
            #expect(error?.code == .connectionFailed || error?.code == .connectionLost)
            #expect(error?.isTransient == true)
            #expect(ContinuousClock.now - started < .seconds(6))
            try await servers.startPostgres()
            let rows = try await client.query("SELECT 1")
            #expect(try rows[0].decode(Int.self, at: 0) == 1)
        }
    }
}

@Suite("Postgres transactions across restarts")
struct PostgresTransactionRestartTests {
    /// Restarts the disruptable Postgres while `body`'s transaction is open between its first and its
    /// later statements, and returns how `withTransaction` ended and the rows committed.
    private func restartInsideTransaction(
        _ body: @escaping @Sendable (PostgresTransaction, _ pause: () -> Void) throws -> Void
    ) async throws -> (outcome: Result<Void, any Error>, committed: Int) {
        try await DisruptableServers.withExclusiveAccess { servers in
            let url = try await TestDatabase.create(prefix: "pin", on: servers.databaseURL)
            let client = try TestDatabase.client(url: url, connections: 1)
            defer { Task { await client.shutdown() } }
            try await client.query("CREATE TABLE pinned (id int PRIMARY KEY)")
            let paused = PauseFlag()
            let resume = DispatchSemaphore(value: 0)
            let transaction = Task {
                try await client.withTransaction { transaction in
                    try body(transaction) {
                        paused.set()
                        resume.wait()
                    }
                }
            }
            while !paused.isSet { try await Task.sleep(for: .milliseconds(10)) }
            try await servers.restartPostgres()
            resume.signal()
            let outcome = await transaction.result
            let committed = try await client.count("SELECT count(*) FROM pinned")
            return (outcome, committed)
        }
    }

    @Test("a statement after the restart fails the transaction; nothing of it commits")
    func failsAfterRestart() async throws {
        let (outcome, committed) = try await restartInsideTransaction { transaction, pause in
            try transaction.query("INSERT INTO pinned VALUES (1)")
            pause()
            try transaction.query("INSERT INTO pinned VALUES (2)")
        }
        #expect(throws: PostgresError.self) { try outcome.get() }
        #expect(committed == 0)
    }

    @Test("a body that swallows the lost connection cannot continue in autocommit on a new session")
    func noAutocommitAfterReconnect() async throws {
        let (outcome, committed) = try await restartInsideTransaction { transaction, pause in
            try transaction.query("INSERT INTO pinned VALUES (1)")
            pause()
            // A body that retries on its own: the retry must not reconnect and run outside the transaction.
            do {
                try transaction.query("INSERT INTO pinned VALUES (2)")
            } catch {
                try transaction.query("INSERT INTO pinned VALUES (3)")
            }
        }
        let error = #expect(throws: PostgresError.self) { try outcome.get() }
        #expect(error?.code == .connectionLost)
        #expect(committed == 0)
    }

    @Test("a transaction that begins with a script (simple protocol) is pinned too")
    func scriptFirstIsPinned() async throws {
        let (outcome, committed) = try await restartInsideTransaction { transaction, pause in
            try transaction.executeScript("INSERT INTO pinned VALUES (1)")
            pause()
            _ = try? transaction.query("INSERT INTO pinned VALUES (2)")
            _ = try? transaction.query("INSERT INTO pinned VALUES (3)")
        }
        let error = #expect(throws: PostgresError.self) { try outcome.get() }
        #expect(error?.code == .connectionLost)
        #expect(committed == 0)
    }

    @Test("a body that swallows every error still gets a failed commit, not a silent one")
    func commitFailsAfterLoss() async throws {
        let (outcome, committed) = try await restartInsideTransaction { transaction, pause in
            try transaction.query("INSERT INTO pinned VALUES (1)")
            pause()
            _ = try? transaction.query("INSERT INTO pinned VALUES (2)")
            _ = try? transaction.query("INSERT INTO pinned VALUES (3)")
        }
        let error = #expect(throws: PostgresError.self) { try outcome.get() }
        #expect(error?.code == .connectionLost)
        #expect(committed == 0)
    }
}

/// Set once from the transaction's thread, polled by the test.
private final class PauseFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
