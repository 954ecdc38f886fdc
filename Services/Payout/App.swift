import ArgumentParser
import Hummingbird
import ServiceKit

/// The payout executable: nightly payouts to hosts.
@main
struct PayoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payout",
        abstract: "Nightly payouts to hosts.",
        subcommands: [Serve.self, MigrateCommand.self, DeadLetterCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `payout serve`: runs the HTTP API until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the payout API.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Operator token for admin routes (ADMIN_TOKEN).") var adminToken: String?

    func run() async throws {
        let flags = common.flags.merging(["ADMIN_TOKEN": adminToken]) { _, flag in flag }
        let settings = ServiceLauncher.configuration {
            try ServiceSettings(serviceName: "payout", defaultPort: 8083, requiresAPIKeys: false, reader: ConfigurationReader(flags: flags))
        }
        let logger = ServiceLauncher.bootstrap(service: "payout", logLevel: settings.logLevel)
        let app = buildApplication(settings, logger: logger)
        try await app.runService()
    }
}
