import ArgumentParser
import Foundation
import Logging
import ServiceKit

/// The provider simulator's settings. ``init(reader:)`` reads them with flags over the environment over
/// the defaults; tests build one directly with ``init(apiKey:)``.
package struct SimulatorConfiguration: ServeConfiguration {
    /// Interface to listen on (`--host`/`HOST`, default `127.0.0.1`).
    package var host = "127.0.0.1"
    /// Port to listen on (`--port`/`PORT`, default 8090; 0 picks a free port).
    package var port = 8090
    /// The key every `/v1` call must present as `Authorization: Bearer <key>` (`PROVIDER_API_KEY`).
    package var apiKey: String
    /// Where events are POSTed (`WEBHOOK_URL`); `nil` records events without delivering them.
    package var webhookURL: String?
    /// The endpoint's signing secret, used as is (`STRIPE_WEBHOOK_SECRET`, else the first of
    /// `STRIPE_WEBHOOK_SECRETS`). Always set when ``webhookURL`` is.
    package var webhookSecret: String?
    /// Delivery attempts per event (`WEBHOOK_ATTEMPTS`, default 5, 1...10).
    package var webhookAttempts = 5
    /// The wait after the first failed attempt; it doubles after each further one (default 200 ms).
    package var webhookRetryDelay: Duration = .milliseconds(200)
    /// The time one delivery attempt may take, connection included (default 5 s).
    package var webhookTimeout: Duration = .seconds(5)
    /// Log level (`LOG_LEVEL`, default `info`).
    package var logLevel: Logger.Level = .info

    /// Settings with the defaults and no webhook delivery.
    package init(apiKey: String) {
        self.apiKey = apiKey
    }

    /// Reads the settings (flags over the environment over the defaults); throws the first missing or
    /// invalid one.
    package init(reader: ConfigurationReader) throws(ConfigurationError) {
        apiKey = try reader.secret("PROVIDER_API_KEY")
        host = reader.string("HOST") ?? host
        port = try reader.integer("PORT", default: port, in: 0...65_535)
        webhookAttempts = try reader.integer("WEBHOOK_ATTEMPTS", default: webhookAttempts, in: 1...10)
        logLevel = try reader.logLevel()
        if let url = reader.string("WEBHOOK_URL") {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                throw ConfigurationError(name: "WEBHOOK_URL", reason: "must be an http or https URL")
            }
            webhookURL = url
            if let secret = reader.string("STRIPE_WEBHOOK_SECRET") {
                webhookSecret = secret
            } else if reader.string("STRIPE_WEBHOOK_SECRETS") != nil {
                webhookSecret = try reader.secretList("STRIPE_WEBHOOK_SECRETS")[0]
            } else {
                throw ConfigurationError(name: "STRIPE_WEBHOOK_SECRET", reason: "is required when WEBHOOK_URL is set")
            }
        }
    }
}

/// `provider-simulator serve`'s options, each also read from the environment variable its help names.
package struct SimulatorOptions: ParsableArguments {
    @Option(help: "Interface to listen on (HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (PORT, default 8090).") var port: String?
    @Option(help: "API key clients must send as a bearer token (PROVIDER_API_KEY, required).") var providerAPIKey: String?
    @Option(help: "Where events are POSTed; unset: recorded only (WEBHOOK_URL).") var webhookURL: String?
    @Option(help: "Webhook signing secret (STRIPE_WEBHOOK_SECRET; else the first of STRIPE_WEBHOOK_SECRETS).") var stripeWebhookSecret: String?
    @Option(help: "Signing secrets of the receiving service, comma-separated; the first signs (STRIPE_WEBHOOK_SECRETS).")
    var stripeWebhookSecrets: String?
    @Option(help: "Delivery attempts per event, 1 to 10 (WEBHOOK_ATTEMPTS, default 5).") var webhookAttempts: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (LOG_LEVEL, default info).") var logLevel: String?

    package init() {}
}
