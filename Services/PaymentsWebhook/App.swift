import ArgumentParser
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle

/// The payments-webhook executable: verified provider webhooks and internal payment events, and the
/// provider worker that creates payment intents and refunds.
@main
struct PaymentsWebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration.service(PaymentsWebhookExecutable.self, abstract: "Verified payment webhooks and payment events.")
}

/// What `payments-webhook serve` runs.
enum PaymentsWebhookExecutable: ServiceExecutable {
    typealias Options = PaymentsOptions
    static let serviceName = "payments-webhook"
    static let serveAbstract = "Serve the payments webhook API."

    static func application(_ configuration: PaymentsConfiguration, logger: Logger) -> some Service {
        buildApplication(configuration, logger: logger)
    }
}
