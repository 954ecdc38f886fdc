import Migrations
import Postgres
import TestSupport
import Testing

@Suite("Migrations")
struct MigratorTests {
    @Test("the bundled migrations parse, are ordered, and include the platform schemas")
    func bundled() throws {
        let migrations = try Migration.bundled()
        #expect(!migrations.isEmpty)
        #expect(migrations.map(\.version) == migrations.map(\.version).sorted())
        #expect(Set(migrations.map(\.version)).count == migrations.count)
        #expect(migrations.first?.owner == "platform")
        #expect(migrations.allSatisfy { Migration.owners.contains($0.owner) })
    }

    @Test("two migrate runs started at the same moment apply each migration exactly once")
    func concurrentRuns() async throws {
        let url = try await TestDatabase.create()
        // A migration that fails if run twice, and one that counts how often it ran.
        let migrations =
            try Migration.bundled() + [
                Migration(version: 9001, owner: "platform", name: "probe_table", sql: "CREATE TABLE public.probe (id int PRIMARY KEY);"),
                Migration(
                    version: 9002, owner: "platform", name: "probe_row", sql: "INSERT INTO public.probe (id) SELECT count(*) + 1 FROM public.probe;"),
            ]
        let clients = try (0..<4).map { _ in try TestDatabase.client(url: url, connections: 1) }
        let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
            for client in clients {
                group.addTask { try await Migrator(client: client, migrations: migrations, logger: TestEnvironment.logger).migrate() }
            }
            return try await group.reduce(into: [Migrator.Report]()) { $0.append($1) }
        }
        let versions = migrations.map(\.version)
        #expect(reports.filter { $0.applied == versions }.count == 1)
        #expect(reports.filter { $0.applied.isEmpty && $0.alreadyApplied == versions }.count == 3)
        let check = clients[0]
        let recorded = try await check.query("SELECT count(*), count(DISTINCT version) FROM public.schema_migrations")
        #expect(try recorded[0].decode(Int.self, at: 0) == versions.count)
        #expect(try recorded[0].decode(Int.self, at: 1) == versions.count)
        let probe = try await check.query("SELECT count(*), max(id) FROM public.probe")
        #expect(try probe[0].decode(Int.self, at: 0) == 1)
        let schemas = try await check.query(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ANY(\(["booking", "payments", "notification", "payout", "messaging"]))"
        )
        #expect(try schemas[0].decode(Int.self, at: 0) == 5)
        for client in clients { await client.shutdown() }
    }

    @Test("messaging.uuid_v7() makes version 7 UUIDs carrying the time in milliseconds, distinct and ordered by it")
    func timeOrderedIDsInSQL() async throws {
        let url = try await TestDatabase.create()
        let client = try TestDatabase.client(url: url, connections: 1)
        defer { Task { await client.shutdown() } }
        _ = try await Migrator(client: client, migrations: try Migration.bundled(), logger: TestEnvironment.logger).migrate()
        let rows = try await client.query(
            """
            WITH made AS (
                SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS before, messaging.uuid_v7() AS id,
                       floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS after
                FROM generate_series(1, 20000)
            )
            SELECT count(*), count(DISTINCT id),
                   count(*) FILTER (WHERE substr(id::text, 15, 1) = '7' AND substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')),
                   count(*) FILTER (WHERE ('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint BETWEEN before AND after)
            FROM made
            """)
        #expect(try rows[0].decode(Int.self, at: 0) == 20_000)
        #expect(try rows[0].decode(Int.self, at: 1) == 20_000)
        #expect(try rows[0].decode(Int.self, at: 2) == 20_000, "version 7, variant 10")
        #expect(try rows[0].decode(Int.self, at: 3) == 20_000, "the time in the first 48 bits")
        // Made a millisecond apart, they sort in the order made.
        let ordered = try await client.query(
            """
            WITH made AS (
                SELECT i, messaging.uuid_v7() AS id FROM generate_series(1, 20) i, LATERAL (SELECT pg_sleep(0.002) WHERE i > 0) pause
            )
            SELECT count(*) FILTER (WHERE id > previous) FROM (SELECT id, lag(id) OVER (ORDER BY i) AS previous FROM made) pairs
            """)
        #expect(try ordered[0].decode(Int.self, at: 0) == 19)
    }

    @Test("a failing migration leaves no trace and stops the run; fixing it lets the next run finish")
    func failingMigration() async throws {
        let url = try await TestDatabase.create()
        let client = try TestDatabase.client(url: url, connections: 1)
        defer { Task { await client.shutdown() } }
        let broken = [
            Migration(version: 1, owner: "platform", name: "table", sql: "CREATE TABLE public.t (id int);"),
            Migration(version: 2, owner: "platform", name: "broken", sql: "CREATE TABLE public.u (id int); SELECT * FROM missing_table;"),
        ]
        await #expect(throws: PostgresError.self) { try await Migrator(client: client, migrations: broken, logger: TestEnvironment.logger).migrate() }
        let partial = try await client.query("SELECT version FROM public.schema_migrations")
        #expect(partial.count == 1)
        let u = try await client.query("SELECT to_regclass('public.u') IS NULL")
        #expect(try u[0].decode(Bool.self, at: 0))
        // A migration must not change once applied.
        let edited = [Migration(version: 1, owner: "platform", name: "table", sql: "CREATE TABLE public.t (id bigint);")]
        await #expect(throws: MigrationError.checksumMismatch(version: 1, name: "table")) {
            try await Migrator(client: client, migrations: edited, logger: TestEnvironment.logger).migrate()
        }
        let fixed = [broken[0], Migration(version: 2, owner: "platform", name: "broken", sql: "CREATE TABLE public.u (id int);")]
        let report = try await Migrator(client: client, migrations: fixed, logger: TestEnvironment.logger).migrate()
        #expect(report.applied == [2])
        #expect(report.alreadyApplied == [1])
    }

    @Test("a database with a migration this build does not know is refused")
    func unknownVersion() async throws {
        let url = try await TestDatabase.create()
        let client = try TestDatabase.client(url: url, connections: 1)
        defer { Task { await client.shutdown() } }
        let newer = [
            Migration(version: 1, owner: "platform", name: "a", sql: "SELECT 1;"),
            Migration(version: 2, owner: "platform", name: "b", sql: "SELECT 1;"),
        ]
        try await Migrator(client: client, migrations: newer, logger: TestEnvironment.logger).migrate()
        await #expect(throws: MigrationError.unknownAppliedVersion(2)) {
            try await Migrator(client: client, migrations: [newer[0]], logger: TestEnvironment.logger).migrate()
        }
    }
}
