import ArgumentParser
import Hummingbird
import ServiceKit

/// The payments-webhook executable: verified provider webhooks and internal payment events, and the
/// provider worker that creates payment intents and refunds.
@main
struct PaymentsWebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payments-webhook",
        abstract: "Verified payment webhooks and payment events.",
        subcommands: [Serve.self, MigrateCommand.self, DeadLetterCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `payments-webhook serve`: runs the HTTP API until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the payments webhook API.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Operator token for admin routes (ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "Stripe webhook signing secrets, comma-separated for rotation (STRIPE_WEBHOOK_SECRETS).")
    var stripeWebhookSecrets: String?
    @Option(help: "Standard Webhooks secrets of internal payment services, whsec_<base64> (PAYMENT_EVENTS_SECRETS).")
    var paymentEventsSecrets: String?
    @Option(help: "The payment provider's API base URL, default https://api.stripe.com (PROVIDER_BASE_URL).") var providerBaseURL: String?
    @Option(help: "Run the provider worker in this process: true or false (PROVIDER_WORKER, default true).") var providerWorker: String?
    @Option(help: "Comma-separated CIDR blocks of the proxies whose X-Forwarded-For entries are believed (TRUSTED_PROXIES).")
    var trustedProxies: String?

    func run() async throws {
        let flags = common.flags.merging([
            "ADMIN_TOKEN": adminToken, "STRIPE_WEBHOOK_SECRETS": stripeWebhookSecrets, "PAYMENT_EVENTS_SECRETS": paymentEventsSecrets,
            "PROVIDER_BASE_URL": providerBaseURL, "PROVIDER_WORKER": providerWorker, "TRUSTED_PROXIES": trustedProxies,
        ]) { _, flag in flag }
        let configuration = ServiceLauncher.configuration { try PaymentsConfiguration(reader: ConfigurationReader(flags: flags)) }
        let logger = ServiceLauncher.bootstrap(service: "payments-webhook", logLevel: configuration.service.logLevel)
        let app = buildApplication(configuration, logger: logger)
        try await app.runService()
    }
}
