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

    @Option(help: "Postgres URL (DATABASE_URL).") var databaseURL: String?
    @Option(help: "Log level (LOG_LEVEL).") var logLevel: String?

    public init() {}

    public func run() async throws {
        let (url, level) = ServiceLauncher.configuration {
            let reader = ConfigurationReader(flags: ["DATABASE_URL": databaseURL, "LOG_LEVEL": logLevel])
            let url = try reader.required("DATABASE_URL")
            do {
                _ = try PostgresClient.Configuration(url: url)
            } catch {
                throw ConfigurationError(name: "DATABASE_URL", reason: "is not a valid Postgres URL")
            }
            return (url, try reader.logLevel())
        }
        let logger = ServiceLauncher.bootstrap(service: "migrate", logLevel: level)
        var configuration = try PostgresClient.Configuration(url: url)
        configuration.maximumConnections = 1
        configuration.statementTimeout = nil
        configuration.applicationName = "migrate"
        let client = PostgresClient(configuration: configuration, logger: logger)
        do {
            let report = try await Migrator(client: client, logger: logger).migrate()
            logger.info(
                "migrations complete",
                metadata: ["applied": "\(report.applied.count)", "already_applied": "\(report.alreadyApplied.count)"]
            )
            await client.shutdown()
        } catch {
            logger.error("migration failed", metadata: ["error": "\(error)"])
            await client.shutdown()
            throw ExitCode.failure
        }
    }
}
