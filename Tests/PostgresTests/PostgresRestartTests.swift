import Postgres
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
            try await servers.restartPostgres()
            for _ in 0..<6 {
                let rows = try await client.query("SELECT pg_postmaster_start_time()::text")
                #expect(try rows[0].decode(String.self, at: 0) != before[0].decode(String.self, at: 0))
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
