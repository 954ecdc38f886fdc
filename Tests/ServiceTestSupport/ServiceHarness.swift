import Foundation
import Hummingbird
import HummingbirdTesting
import Migrations
import Postgres
import ServiceKit
import TestSupport

/// What the in-process harnesses of the services share: a fresh migrated database, the settings a
/// service under test starts with, and driving its router with a test client.
public enum ServiceHarness {
    /// Creates a database on `server` (default: the shared test Postgres), migrates it, and returns its URL.
    public static func migratedDatabase(prefix: String, on server: String? = nil) async throws -> String {
        PlatformMetrics.bootstrap()
        let url = try await TestDatabase.create(prefix: prefix, on: server)
        let client = try TestDatabase.client(url: url, connections: 1)
        _ = try await Migrator(client: client, logger: TestEnvironment.logger).migrate()
        await client.shutdown()
        return url
    }

    /// The shared settings (database, Redis, admin token, generous pool waits for parallel suites)
    /// merged with the service's own `settings` and the test's `extra`, later ones winning.
    public static func environment(
        databaseURL: String, redisURL: String?, adminToken: String, settings: [String: String], extra: [String: String]
    ) throws -> [String: String] {
        var environment = [
            "DATABASE_URL": databaseURL,
            "REDIS_URL": try redisURL ?? TestEnvironment.redisURL(),
            "ADMIN_TOKEN": adminToken,
            "DATABASE_POOL_SIZE": "8",
            "DATABASE_POOL_WAIT": "60s",
            "DATABASE_CONNECT_TIMEOUT": "2s",
        ]
        environment.merge(settings) { _, new in new }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Runs `body` with a client of `router` (in-process by default; `.live` serves it on a local port),
    /// then closes the application's pools (also when `body` throws).
    public static func run(
        _ router: Router<ServiceRequestContext>, app: ServiceApplication, testing: TestingSetup = .router,
        _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        do {
            try await Application(router: router).test(testing, body)
        } catch {
            await shutdown(app)
            throw error
        }
        await shutdown(app)
    }

    /// Closes the application's pools.
    public static func shutdown(_ app: ServiceApplication) async {
        await app.postgres.shutdown()
        await app.consumerPostgres.shutdown()
        await app.redis.shutdown()
    }
}
