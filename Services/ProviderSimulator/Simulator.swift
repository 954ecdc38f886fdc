import ArgumentParser
import Hummingbird
import Logging
import ServiceKit

/// The provider-simulator executable: a local Stripe-compatible payment provider.
@main
struct ProviderSimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: ProviderSimulatorExecutable.serviceName,
        abstract: "A local Stripe-compatible payment provider for development and end-to-end tests.",
        subcommands: [ServeCommand<ProviderSimulatorExecutable>.self],
        defaultSubcommand: ServeCommand<ProviderSimulatorExecutable>.self
    )
}

/// What `provider-simulator serve` runs, until SIGTERM or SIGINT.
enum ProviderSimulatorExecutable: ServiceExecutable {
    typealias Options = SimulatorOptions
    static let serviceName = "provider-simulator"
    static let serveAbstract = "Serve the simulated provider."

    static func application(_ configuration: SimulatorConfiguration, logger: Logger) -> some ApplicationProtocol {
        logger.info(
            "provider simulator starting",
            metadata: [
                "host": "\(configuration.host)", "port": "\(configuration.port)",
                "webhook_url": "\(configuration.webhookURL ?? "none (events recorded only)")",
                "webhook_attempts": "\(configuration.webhookAttempts)",
            ])
        return buildSimulator(configuration: configuration, logger: logger)
    }
}
