import ArgumentParser
import Foundation
import Logging
import ServiceKit

/// `notification serve`'s options: the shared ones and the settings ``NotificationConfiguration`` reads.
struct NotificationOptions: ParsableArguments {
    @OptionGroup(title: "Shared options") var shared: ServiceOptions
    @OptionGroup(title: "Secrets keys") var secretsKeys: SecretsKeyOptions
    @Option(
        help: "Allow endpoints on loopback, private and link-local addresses: true or false (NOTIFICATION_ALLOW_PRIVATE_NETWORKS, default false).")
    var notificationAllowPrivateNetworks: String?
    @Option(help: "How long one delivery attempt may take, e.g. 15s (NOTIFICATION_TIMEOUT).") var notificationTimeout: String?
    @Option(help: "Disable an endpoint failing without a success this long, e.g. 120h (NOTIFICATION_DISABLE_AFTER).")
    var notificationDisableAfter: String?
    @Option(help: "How long a delivery waits for an earlier one of its aggregate to the same endpoint, e.g. 1h (NOTIFICATION_ORDER_WAIT).")
    var notificationOrderWait: String?
    @Option(help: "Deliveries in flight to one endpoint at once (NOTIFICATION_ENDPOINT_CONCURRENCY, default 4).")
    var notificationEndpointConcurrency: String?
    @Option(help: "Deliveries in flight in this process at once (NOTIFICATION_MAX_IN_FLIGHT, default 256).")
    var notificationMaxInFlight: String?
    @Option(help: "How long attempts and finished deliveries are kept, e.g. 720h (NOTIFICATION_RETENTION, default 30 days).")
    var notificationRetention: String?
}

/// The notification service's settings (DESIGN.md, Notification and Configuration).
struct NotificationConfiguration: ServeConfiguration {
    var service: ServiceSettings
    var logLevel: Logger.Level { service.logLevel }
    /// The 32 bytes that encrypt endpoint secrets at rest (AES-256-GCM).
    var secretsKey: Data
    /// The key being replaced (`NOTIFICATION_SECRETS_KEY_PREVIOUS`), which still opens secrets; nil
    /// outside a re-key.
    var previousSecretsKey: Data?
    /// The keys that open secrets, the current one first (``SecretBox``).
    var secretsKeys: [Data] { [secretsKey] + (previousSecretsKey.map { [$0] } ?? []) }
    /// Endpoints may point at loopback, private and link-local addresses (local development only).
    var allowsPrivateNetworks: Bool
    var delivery: DeliverySettings
    /// Finished deliveries, their attempts and received events older than this are deleted.
    var retention: Duration

    init(reader: ConfigurationReader) throws(ConfigurationError) {
        service = try ServiceSettings(serviceName: "notification", defaultPort: 8082, requiresAPIKeys: false, reader: reader)
        (secretsKey, previousSecretsKey) = try Self.secretsKeys(reader)
        allowsPrivateNetworks = try reader.boolean("NOTIFICATION_ALLOW_PRIVATE_NETWORKS", default: false)
        delivery = DeliverySettings(
            timeout: try reader.duration("NOTIFICATION_TIMEOUT", default: .seconds(15), in: .milliseconds(100) ... .seconds(300)),
            disableAfter: try reader.duration(
                "NOTIFICATION_DISABLE_AFTER", default: .seconds(5 * 86_400), in: .seconds(1) ... .seconds(365 * 86_400)),
            orderWait: try reader.duration("NOTIFICATION_ORDER_WAIT", default: .seconds(3_600), in: .seconds(0) ... .seconds(7 * 86_400)),
            endpointConcurrency: try reader.integer("NOTIFICATION_ENDPOINT_CONCURRENCY", default: 4, in: 1...256),
            maximumInFlight: try reader.integer("NOTIFICATION_MAX_IN_FLIGHT", default: 256, in: 1...10_000)
        )
        retention = try reader.duration(
            "NOTIFICATION_RETENTION", default: .seconds(30 * 86_400), in: .seconds(3_600) ... .seconds(3_650 * 86_400))
    }
}

extension NotificationConfiguration {
    /// `NOTIFICATION_SECRETS_KEY` and, when set, `NOTIFICATION_SECRETS_KEY_PREVIOUS` (`serve` and
    /// `rekey-secrets` read them alike).
    static func secretsKeys(_ reader: ConfigurationReader) throws(ConfigurationError) -> (current: Data, previous: Data?) {
        let current = try secretsKey("NOTIFICATION_SECRETS_KEY", reader)
        guard reader.string("NOTIFICATION_SECRETS_KEY_PREVIOUS") != nil else { return (current, nil) }
        return (current, try secretsKey("NOTIFICATION_SECRETS_KEY_PREVIOUS", reader))
    }

    /// A secrets key: the base64 of 32 bytes.
    static func secretsKey(_ name: String, _ reader: ConfigurationReader) throws(ConfigurationError) -> Data {
        let key = try reader.secret(name)
        guard let bytes = Data(base64Encoded: key), bytes.count == 32 else {
            throw ConfigurationError(name: name, reason: "must be the base64 of 32 random bytes (e.g. `head -c32 /dev/urandom | base64`)")
        }
        return bytes
    }
}

/// How deliveries are sent: DESIGN.md's defaults.
struct DeliverySettings: Sendable {
    /// One attempt's budget: connect, send and the answer (`NOTIFICATION_TIMEOUT`, 15 s).
    var timeout: Duration = .seconds(15)
    /// An endpoint failing without a success this long is disabled (`NOTIFICATION_DISABLE_AFTER`, 5 days).
    var disableAfter: Duration = .seconds(5 * 86_400)
    /// How long a delivery waits for an earlier pending one of its aggregate to the same endpoint
    /// before it goes out anyway, flagged `out_of_order` (`NOTIFICATION_ORDER_WAIT`, 1 h).
    var orderWait: Duration = .seconds(3_600)
    /// Deliveries in flight to one endpoint (`NOTIFICATION_ENDPOINT_CONCURRENCY`, 4).
    var endpointConcurrency = 4
    /// Deliveries in flight in one process (`NOTIFICATION_MAX_IN_FLIGHT`, 256).
    var maximumInFlight = 256
    /// How often the dispatcher looks for due deliveries when nothing woke it.
    var pollInterval: Duration = .milliseconds(250)
    /// The longest a claimed delivery waits for its endpoint's rate limit before it is given back.
    static let maximumRateLimitWait: Duration = .seconds(2)
    /// How long a claim lasts: a worker that dies holding one gives it back when this passes (the
    /// delivery is then sent again). Longer than an attempt can take: the rate-limit wait, the
    /// timeout, and 10 s to record the outcome.
    var lease: Duration { Self.maximumRateLimitWait + timeout + .seconds(10) }
}
