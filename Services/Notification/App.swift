import ArgumentParser
import Hummingbird
import ServiceKit

/// The notification executable: signed webhook delivery to subscribers.
@main
struct NotificationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notification",
        abstract: "Signed webhook delivery to subscribers.",
        subcommands: [Serve.self, MigrateCommand.self, DeadLetterCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `notification serve`: runs the HTTP API until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the notification API.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Operator token for admin routes (ADMIN_TOKEN).") var adminToken: String?

    func run() async throws {
        let flags = common.flags.merging(["ADMIN_TOKEN": adminToken]) { _, flag in flag }
        let settings = ServiceLauncher.configuration {
            try ServiceSettings(serviceName: "notification", defaultPort: 8082, requiresAPIKeys: false, reader: ConfigurationReader(flags: flags))
        }
        let logger = ServiceLauncher.bootstrap(service: "notification", logLevel: settings.logLevel)
        let app = buildApplication(settings, logger: logger)
        try await app.runService()
    }
}
