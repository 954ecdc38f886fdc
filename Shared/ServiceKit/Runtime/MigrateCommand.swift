import ArgumentParser
import Logging
import Migrations
import Postgres

/// `<service> migrate`: applies the whole product's migrations (every service's schema, one ordered
/// sequence), each exactly once, under an advisory lock. Every executable carries the same command, so
/// any of them can migrate; `scripts/run` uses `booking migrate`.
public struct MigrateCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the product's database migrations, each exactly once."
    )

    @OptionGroup var database: DatabaseOption
    @Option(help: "Log level (LOG_LEVEL).") var logLevel: String?

    public init() {}

    public func run() async throws {
        var configuration = database.configuration()
        let level = ServiceLauncher.configuration { try ConfigurationReader(flags: ["LOG_LEVEL": logLevel]).logLevel() }
        let logger = ServiceLauncher.bootstrap(service: "migrate", logLevel: level)
        configuration.maximumConnections = 1
        configuration.statementTimeout = nil
        configuration.applicationName = "migrate"
        do {
            let report = try await withPostgres(configuration: configuration, logger: logger) { client in
                try await Migrator(client: client, logger: logger).migrate()
            }
            logger.info(
                "migrations complete",
                metadata: ["applied": "\(report.applied.count)", "already_applied": "\(report.alreadyApplied.count)"]
            )
        } catch {
            logger.error("migration failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
