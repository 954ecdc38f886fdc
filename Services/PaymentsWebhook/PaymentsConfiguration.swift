import Foundation
import ServiceKit

/// The payments-webhook service's settings (DESIGN.md, Configuration). Both secret lists are required:
/// a missing secret stops start-up instead of accepting unverifiable webhooks.
struct PaymentsConfiguration: Sendable {
    var service: ServiceSettings
    /// Stripe signing secrets used as given (`whsec_...` included); several during rotation.
    var stripeWebhookSecrets: [String]
    /// Standard Webhooks secrets, decoded from the base64 after `whsec_`.
    var paymentEventsSecrets: [[UInt8]]

    init(reader: ConfigurationReader) throws(ConfigurationError) {
        service = try ServiceSettings(
            serviceName: "payments-webhook",
            defaultPort: 8081,
            requiresAPIKeys: false,
            defaultMaximumBodySize: 256 * 1024,
            reader: reader
        )
        stripeWebhookSecrets = try reader.secretList("STRIPE_WEBHOOK_SECRETS")
        paymentEventsSecrets = try reader.secretList("PAYMENT_EVENTS_SECRETS").map { secret throws(ConfigurationError) in
            guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))), !key.isEmpty else {
                throw ConfigurationError(name: "PAYMENT_EVENTS_SECRETS", reason: "must be whsec_ followed by base64")
            }
            return Array(key)
        }
    }
}
