import Foundation
import ServiceKit
import WebhookSignatures

/// The payments-webhook service's settings (DESIGN.md, Configuration). The secrets are required: a
/// missing secret stops start-up instead of accepting unverifiable webhooks or calling the provider
/// without a key.
struct PaymentsConfiguration: Sendable {
    var service: ServiceSettings
    /// Stripe signing secrets used as given (`whsec_...` included); several during rotation.
    var stripeWebhookSecrets: [String]
    /// Standard Webhooks secrets (`whsec_` + base64 of the key).
    var paymentEventsSecrets: [StandardWebhookSecret]
    /// How far a signature's timestamp may be from now, either way (300 s).
    var signatureTolerance: Duration
    /// The budget of unverified requests per source: `burst` at once, refilled at `refillPerMinute`.
    var unverifiedLimit: UnverifiedRequestLimiter.Limits
    /// Take a request's source from the last `X-Forwarded-For` entry (set only behind a proxy that
    /// appends it); otherwise the peer address.
    var trustForwardedFor: Bool
    /// The Stripe-compatible provider the worker calls.
    var provider: StripeProvider.Configuration
    /// Run the provider worker (consumer group `payments-provider`) in this process.
    var runsProviderWorker: Bool

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
        signatureTolerance = try reader.duration("WEBHOOK_TOLERANCE", default: .seconds(300), in: .seconds(1) ... .seconds(3600))
        unverifiedLimit = UnverifiedRequestLimiter.Limits(
            burst: try reader.integer("UNVERIFIED_BURST", default: 20, in: 1...100_000),
            refillPerMinute: try reader.integer("UNVERIFIED_REFILL_PER_MINUTE", default: 120, in: 1...6_000_000)
        )
        trustForwardedFor = try reader.boolean("TRUST_FORWARDED_FOR", default: false)
        let baseURL = reader.string("PROVIDER_BASE_URL") ?? "https://api.stripe.com"
        guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(name: "PROVIDER_BASE_URL", reason: "must be an http(s) URL such as https://api.stripe.com")
        }
        provider = StripeProvider.Configuration(
            baseURL: baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL,
            apiKey: try reader.secret("PROVIDER_API_KEY"),
            timeout: try reader.duration("PROVIDER_TIMEOUT", default: .seconds(10), in: .milliseconds(100) ... .seconds(120))
        )
        runsProviderWorker = try reader.boolean("PROVIDER_WORKER", default: true)
    }
}
