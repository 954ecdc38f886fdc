import Logging
import Postgres

/// Applies the product's migrations in order, each exactly once, however many instances start at once.
///
/// The migrator holds a session advisory lock while it works, so concurrent runs queue behind each other
/// and the later ones find nothing left to do. Each migration runs in its own transaction together with
/// its row in `public.schema_migrations`, so a failed migration leaves no trace and is retried next time.
public struct Migrator: Sendable {
    /// The advisory lock key every instance of every service uses for migrations.
    public static let advisoryLockKey: Int64 = 0x626F_6F6B_696E_6701  // "booking" + 1

    private let client: PostgresClient
    private let migrations: [Migration]
    private let logger: Logger

    /// - Parameter migrations: the sequence to apply; defaults to the migrations shipped with the build.
    public init(client: PostgresClient, migrations: [Migration]? = nil, logger: Logger) throws {
        self.client = client
        self.migrations = try Migration.ordered(migrations ?? Migration.bundled())
        self.logger = logger
    }

    /// What a run did.
    public struct Report: Sendable, Equatable {
        /// Versions this run applied, in order.
        public var applied: [Int]
        /// Versions that were already applied before this run.
        public var alreadyApplied: [Int]
    }

    /// Applies every pending migration and returns what it did.
    @discardableResult
    public func migrate() async throws -> Report {
        let migrations = self.migrations
        let logger = self.logger
        return try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.advisoryLockKey))")
            do {
                let report = try await Self.applyPending(migrations, on: connection, logger: logger)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))")
                return report
            } catch {
                // A broken connection releases the lock with its session; otherwise release it here.
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))")
                throw error
            }
        }
    }

    private static func applyPending(_ migrations: [Migration], on connection: PostgresConnection, logger: Logger) async throws -> Report {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS public.schema_migrations (
                version integer PRIMARY KEY,
                owner text NOT NULL,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL
            )
            """
        )
        let rows = try await connection.query("SELECT version, checksum FROM public.schema_migrations ORDER BY version")
        var applied: [Int: String] = [:]
        for row in rows {
            applied[try row.decode(Int.self, at: 0)] = try row.decode(String.self, at: 1)
        }
        let known = Set(migrations.map(\.version))
        if let unknown = applied.keys.sorted().first(where: { !known.contains($0) }) {
            throw MigrationError.unknownAppliedVersion(unknown)
        }
        var report = Report(applied: [], alreadyApplied: [])
        for migration in migrations {
            if let checksum = applied[migration.version] {
                let current = try await connection.query("SELECT md5(\(migration.sql))")
                guard try current[0].decode(String.self, at: 0) == checksum else {
                    throw MigrationError.checksumMismatch(version: migration.version, name: migration.name)
                }
                report.alreadyApplied.append(migration.version)
                continue
            }
            let started = ContinuousClock.now
            try await connection.withTransaction { transaction in
                try transaction.executeScript(migration.sql)
                let elapsed = ContinuousClock.now - started
                try transaction.query(
                    """
                    INSERT INTO public.schema_migrations (version, owner, name, checksum, duration_ms)
                    VALUES (\(migration.version), \(migration.owner), \(migration.name), md5(\(migration.sql)),
                            \(Int((elapsed / .milliseconds(1)).rounded())))
                    """)
            }
            logger.info(
                "applied migration",
                metadata: ["version": "\(migration.version)", "owner": "\(migration.owner)", "name": "\(migration.name)"]
            )
            report.applied.append(migration.version)
        }
        return report
    }
}
