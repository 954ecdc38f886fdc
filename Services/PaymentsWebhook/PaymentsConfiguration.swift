import Foundation
import ServiceKit
import WebhookSignatures

/// The payments-webhook service's settings (DESIGN.md, Configuration). Both secret lists are required:
/// a missing secret stops start-up instead of accepting unverifiable webhooks.
struct PaymentsConfiguration: Sendable {
    var service: ServiceSettings
    /// Stripe signing secrets used as given (`whsec_...` included); several during rotation.
    var stripeWebhookSecrets: [String]
    /// Standard Webhooks secrets (`whsec_` + base64 of the key).
    var paymentEventsSecrets: [StandardWebhookSecret]

    init(reader: ConfigurationReader) throws(ConfigurationError) {
        service = try ServiceSettings(
            serviceName: "payments-webhook",
            defaultPort: 8081,
            requiresAPIKeys: false,
            defaultMaximumBodySize: 256 * 1024,
            reader: reader
        )
        stripeWebhookSecrets = try reader.secretList("STRIPE_WEBHOOK_SECRETS")
        paymentEventsSecrets = try reader.secretList("PAYMENT_EVENTS_SECRETS").map { text throws(ConfigurationError) in
            guard let secret = StandardWebhookSecret(text) else {
                throw ConfigurationError(name: "PAYMENT_EVENTS_SECRETS", reason: "must be whsec_ followed by base64")
            }
            return secret
        }
    }
}
