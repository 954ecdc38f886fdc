import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// The provider-simulator executable: a local Stripe-compatible payment provider.
@main
struct ProviderSimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provider-simulator",
        abstract: "A local Stripe-compatible payment provider for development and end-to-end tests.",
        subcommands: [ServeSimulator.self],
        defaultSubcommand: ServeSimulator.self
    )
}

/// `provider-simulator serve`: runs the simulator until SIGTERM or SIGINT.
struct ServeSimulator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the simulated provider.")

    @Option(help: "Interface to listen on (HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (PORT, default 8090).") var port: String?
    @Option(help: "API key clients must send as a bearer token (PROVIDER_API_KEY, required).") var apiKey: String?
    @Option(name: .customLong("webhook-url"), help: "Where events are POSTed (WEBHOOK_URL); unset: recorded only.")
    var webhookURL: String?
    @Option(help: "Webhook signing secret (STRIPE_WEBHOOK_SECRET, else the first of STRIPE_WEBHOOK_SECRETS).")
    var webhookSecret: String?
    @Option(help: "Delivery attempts per event (WEBHOOK_ATTEMPTS, default 5).") var webhookAttempts: String?
    @Option(help: "Log level (LOG_LEVEL, default info).") var logLevel: String?

    func run() async throws {
        let flags: [String: String?] = [
            "HOST": host, "PORT": port, "PROVIDER_API_KEY": apiKey, "WEBHOOK_URL": webhookURL,
            "STRIPE_WEBHOOK_SECRET": webhookSecret, "WEBHOOK_ATTEMPTS": webhookAttempts, "LOG_LEVEL": logLevel,
        ]
        let configuration: SimulatorConfiguration
        do {
            configuration = try SimulatorConfiguration(flags: flags)
        } catch {
            FileHandle.standardError.write(Data("configuration error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var logger = Logger(label: "provider-simulator")
        logger.logLevel = configuration.logLevel
        logger.info(
            "provider simulator starting",
            metadata: [
                "host": "\(configuration.host)", "port": "\(configuration.port)",
                "webhook_url": "\(configuration.webhookURL ?? "none (events recorded only)")",
                "webhook_attempts": "\(configuration.webhookAttempts)",
            ])
        let app = buildSimulator(configuration: configuration, logger: logger)
        try await app.runService()
    }
}
