import ArgumentParser
import Foundation
import Logging
import ServiceKit
import WebhookSignatures

/// `payments-webhook serve`'s options: the shared ones and the settings ``PaymentsConfiguration`` reads.
struct PaymentsOptions: ParsableArguments {
    @OptionGroup(title: "Shared options") var shared: ServiceOptions
    @Option(help: "Stripe webhook signing secrets, comma-separated for rotation (STRIPE_WEBHOOK_SECRETS, required).")
    var stripeWebhookSecrets: String?
    @Option(help: "Standard Webhooks secrets of internal payment services, whsec_<base64>, comma-separated (PAYMENT_EVENTS_SECRETS, required).")
    var paymentEventsSecrets: String?
    @Option(help: "How far a signature's timestamp may be from now, e.g. 300s (WEBHOOK_TOLERANCE).") var webhookTolerance: String?
    @Option(help: "Unverified requests one source may send at once (UNVERIFIED_BURST, default 20).") var unverifiedBurst: String?
    @Option(help: "Unverified requests per minute one source regains (UNVERIFIED_REFILL_PER_MINUTE, default 120).")
    var unverifiedRefillPerMinute: String?
    @Option(help: "Comma-separated CIDR blocks of the proxies whose X-Forwarded-For entries are believed (TRUSTED_PROXIES).")
    var trustedProxies: String?
    @Option(help: "Deprecated: trust the last X-Forwarded-For entry, true or false (TRUST_FORWARDED_FOR); use TRUSTED_PROXIES.")
    var trustForwardedFor: String?
    @Option(help: "The payment provider's API base URL, default https://api.stripe.com (PROVIDER_BASE_URL).") var providerBaseURL: String?
    @Option(help: "The payment provider's secret API key (PROVIDER_API_KEY, required).") var providerAPIKey: String?
    @Option(help: "How long one provider call may take, e.g. 10s (PROVIDER_TIMEOUT).") var providerTimeout: String?
    @Option(help: "Run the provider worker in this process: true or false (PROVIDER_WORKER, default true).") var providerWorker: String?
    @Option(help: "How long stored provider events are kept, at least 120 days, e.g. 2880h (PROVIDER_EVENT_RETENTION).")
    var providerEventRetention: String?
    @Option(help: "How often the provider's events are listed to recover lost webhooks, e.g. 5m; 0s = never (PROVIDER_SWEEP_INTERVAL).")
    var providerSweepInterval: String?
    @Option(help: "How far back the first sweep lists events, e.g. 72h (PROVIDER_SWEEP_LOOKBACK).") var providerSweepLookback: String?
    @Option(help: "How long an intent may go without a final event before it is read directly, e.g. 20m (PROVIDER_SWEEP_INTENT_AGE).")
    var providerSweepIntentAge: String?
    @Option(help: "How old an event must be before the sweep stores it, e.g. 60s (PROVIDER_SWEEP_SETTLE).") var providerSweepSettle: String?
}

/// The payments-webhook service's settings (DESIGN.md, Configuration). The secrets are required: a
/// missing secret stops start-up instead of accepting unverifiable webhooks or calling the provider
/// without a key.
struct PaymentsConfiguration: ServeConfiguration {
    var service: ServiceSettings
    var logLevel: Logger.Level { service.logLevel }
    /// Stripe signing secrets used as given (`whsec_...` included); several during rotation.
    var stripeWebhookSecrets: [String]
    /// Standard Webhooks secrets (`whsec_` + base64 of the key).
    var paymentEventsSecrets: [StandardWebhookSecret]
    /// How far a signature's timestamp may be from now, either way (300 s).
    var signatureTolerance: Duration
    /// The budget of unverified requests per source: `burst` at once, refilled at `refillPerMinute`.
    var unverifiedLimit: UnverifiedRequestLimiter.Limits
    /// Where a request's client (its source for the unverified-request budget) comes from: the peer,
    /// or the first untrusted `X-Forwarded-For` hop behind `TRUSTED_PROXIES`, or (deprecated
    /// `TRUST_FORWARDED_FOR=true` without `TRUSTED_PROXIES`) the last `X-Forwarded-For` entry.
    var clientAddresses: ClientAddressResolver.Policy
    /// Warnings about the settings to log once at start-up (a deprecated setting in use).
    var startupWarnings: [String] = []
    /// The Stripe-compatible provider the worker calls.
    var provider: StripeProvider.Configuration
    /// Run the provider worker (consumer group `payments-provider`) in this process.
    var runsProviderWorker: Bool
    /// How long stored provider events (raw webhook bodies) are kept (`PROVIDER_EVENT_RETENTION`,
    /// default and least 120 days: disputes can arrive that late, and the deliveries are their evidence).
    var providerEventRetention: Duration
    /// How often the missed-webhook sweeper runs (`PROVIDER_SWEEP_INTERVAL`, default 5 min, 0 = off).
    var providerSweepInterval: Duration
    /// How far back its first sweep lists (`PROVIDER_SWEEP_LOOKBACK`, default 72 h, 1 h to 30 days).
    var providerSweepLookback: Duration
    /// How long an intent may go without a final event before it is read directly
    /// (`PROVIDER_SWEEP_INTENT_AGE`, default 20 min, 1 s to 24 h).
    var providerSweepIntentAge: Duration
    /// How old a listed event must be before the sweep stores it (`PROVIDER_SWEEP_SETTLE`, default
    /// 60 s, 0 to 1 h): a younger one's webhook may be on its way.
    var providerSweepSettle: Duration

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
        let trustForwardedFor = try reader.boolean("TRUST_FORWARDED_FOR", default: false)
        if let proxies = reader.string("TRUSTED_PROXIES") {
            do {
                clientAddresses = .trustedProxies(try IPNetwork.list(proxies))
            } catch {
                throw ConfigurationError(
                    name: "TRUSTED_PROXIES", reason: "must be comma-separated CIDR blocks such as 10.0.0.0/8,2001:db8::/32: \(error)")
            }
            if trustForwardedFor { startupWarnings.append("TRUST_FORWARDED_FOR is deprecated and ignored because TRUSTED_PROXIES is set; remove it") }
        } else if trustForwardedFor {
            clientAddresses = .lastForwardedFor
            startupWarnings.append(
                "TRUST_FORWARDED_FOR is deprecated: it trusts the last X-Forwarded-For entry whoever wrote it; set TRUSTED_PROXIES to the proxies' CIDR blocks instead"
            )
        } else {
            clientAddresses = .peer
        }
        provider = StripeProvider.Configuration(
            baseURL: try reader.baseURL("PROVIDER_BASE_URL", default: "https://api.stripe.com"),
            apiKey: try reader.secret("PROVIDER_API_KEY"),
            timeout: try reader.duration("PROVIDER_TIMEOUT", default: .seconds(10), in: .milliseconds(100) ... .seconds(120))
        )
        runsProviderWorker = try reader.boolean("PROVIDER_WORKER", default: true)
        providerEventRetention = try reader.duration(
            "PROVIDER_EVENT_RETENTION", default: .seconds(120 * 86_400), in: .seconds(120 * 86_400)...(.seconds(3650 * 86_400)))
        providerSweepInterval = try reader.duration("PROVIDER_SWEEP_INTERVAL", default: .seconds(300), in: .zero...(.seconds(86_400)))
        providerSweepLookback = try reader.duration(
            "PROVIDER_SWEEP_LOOKBACK", default: .seconds(72 * 3600), in: .seconds(3600)...(.seconds(30 * 86_400)))
        providerSweepIntentAge = try reader.duration("PROVIDER_SWEEP_INTENT_AGE", default: .seconds(1200), in: .seconds(1)...(.seconds(86_400)))
        providerSweepSettle = try reader.duration("PROVIDER_SWEEP_SETTLE", default: .seconds(60), in: .zero...(.seconds(3600)))
    }
}
