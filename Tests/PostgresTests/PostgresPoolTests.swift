import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Postgres pool")
struct PostgresPoolTests {
    @Test("blocked connections do not block the cooperative pool")
    func blockedConnectionsLeaveThePoolFree() async throws {
        let client = try TestDatabase.client(url: TestEnvironment.databaseURL(), connections: 4)
        defer { Task { await client.shutdown() } }
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { try await client.query("SELECT pg_sleep(2)") }
            }
            // Let every connection enter its blocking call, then time an unrelated sleep: if the blocking
            // calls held the cooperative pool, it could not finish before they do (about 1,950 ms from now).
            // The bound leaves room for a machine busy with the other suites running in parallel.
            try await Task.sleep(for: .milliseconds(50))
            let sleepStart = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(100))
            let sleepTook = ContinuousClock.now - sleepStart
            #expect(sleepTook < .milliseconds(1500), "a 100 ms sleep took \(sleepTook) while 4 connections were blocked")
            try await group.waitForAll()
        }
        // The four sleeps ran in parallel on four connections.
        let total = ContinuousClock.now - started
        #expect(total >= .seconds(2))
        #expect(total < .seconds(6), "in series they would take 8 s")
    }

    @Test("500 concurrent tasks over 4 connections all complete with correct results")
    func manyTasksFewConnections() async throws {
        var configuration = try PostgresClient.Configuration(url: TestEnvironment.databaseURL())
        configuration.maximumConnections = 4
        configuration.maximumPoolWait = .seconds(30)
        configuration.applicationName = "pool-\(UUID().uuidString.prefix(8))"
        let client = PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { await client.shutdown() } }
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for value in 0..<500 {
                group.addTask {
                    let rows = try await client.query("SELECT \(value)::bigint * 2, pg_backend_pid()")
                    return (value, try rows[0].decode(Int.self, at: 0))
                }
            }
            return try await group.reduce(into: [(Int, Int)]()) { $0.append($1) }
        }
        #expect(results.count == 500)
        #expect(results.allSatisfy { $0.1 == $0.0 * 2 })
        let backends = try await client.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = \(configuration.applicationName)")
        #expect(try backends[0].decode(Int.self, at: 0) <= 4)
    }

    @Test("a tiny wait limit fails excess callers with poolExhausted instead of hanging")
    func poolExhaustedIsTyped() async throws {
        let client = try TestDatabase.client(url: TestEnvironment.databaseURL(), connections: 2, maximumWait: .milliseconds(20))
        defer { Task { await client.shutdown() } }
        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: Result<Void, PostgresError>.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do {
                        try await client.query("SELECT pg_sleep(0.3)")
                        return .success(())
                    } catch let error as PostgresError {
                        return .failure(error)
                    } catch {
                        return .failure(PostgresError(code: .server, message: "\(error)"))
                    }
                }
            }
            return await group.reduce(into: [Result<Void, PostgresError>]()) { $0.append($1) }
        }
        let exhausted = outcomes.filter { if case .failure(let error) = $0 { error.code == .poolExhausted } else { false } }
        let succeeded = outcomes.filter { if case .success = $0 { true } else { false } }
        #expect(succeeded.count >= 2)
        #expect(exhausted.count >= 10)
        #expect(exhausted.count + succeeded.count == 20)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("an unreachable server fails with connectionFailed")
    func unreachableServer() async throws {
        var configuration = try PostgresClient.Configuration(url: "postgres://postgres@127.0.0.1:1/postgres")
        configuration.connectTimeout = .seconds(2)
        let client = PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { await client.shutdown() } }
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == .connectionFailed)
    }

    @Test("a malformed URL is refused up front")
    func malformedURL() {
        #expect(throws: PostgresError.self) { try PostgresClient.Configuration(url: "postgres://host:notaport/db") }
    }
}
