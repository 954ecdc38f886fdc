import ArgumentParser
import Logging
import ServiceKit
import SharedModel

/// `booking serve`'s options: the shared ones and the booking settings ``BookingConfiguration`` reads.
struct BookingOptions: ParsableArguments {
    @OptionGroup(title: "Shared options") var shared: ServiceOptions
    @Option(help: "How long a hold lasts, e.g. 10m; at most 30m (HOLD_TTL).") var holdTTL: String?
    @Option(help: "How long a booking waits for payment, e.g. 15m (PAYMENT_WINDOW).") var paymentWindow: String?
    @Option(help: "Extra time for a payment made in the window to arrive, e.g. 2m (PAYMENT_GRACE).") var paymentGrace: String?
    @Option(help: "The most seats one hold may take (MAX_SEATS_PER_HOLD, default 10).") var maxSeatsPerHold: String?
    @Option(help: "How long a refund may stay unconfirmed before an operator must look, e.g. 1h (REFUND_PENDING_BOUND).")
    var refundPendingBound: String?
    @Option(help: "Payment events the saga coordinator applies at once in this process (SAGA_CONSUMER_CONCURRENCY, default 32).")
    var sagaConsumerConcurrency: String?
    @Option(help: "How long a finished saga's step log is kept, e.g. 4320h (SAGA_STEP_RETENTION, default 180 days).")
    var sagaStepRetention: String?
    @Option(help: "The most seats one customer may hold at once, in holds and bookings awaiting payment (MAX_HELD_SEATS_PER_CUSTOMER, default 20).")
    var maxHeldSeatsPerCustomer: String?
    @Option(help: "Hold attempts one customer may make per minute, failed ones included (HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE, default 60).")
    var holdAttemptsPerCustomerPerMinute: String?
    @Option(help: "Per-client rate limits on the public routes, e.g. name=100/s,*=500/s (API_KEY_RATE_LIMITS, default none).")
    var apiKeyRateLimits: String?
    @Option(help: "Bookings of a cancelled event cancelled per transaction (EVENT_CANCELLATION_BATCH, default 50).")
    var eventCancellationBatch: String?
}

/// The booking service's settings (DESIGN.md, Configuration).
struct BookingConfiguration: ServeConfiguration {
    var service: ServiceSettings
    var logLevel: Logger.Level { service.logLevel }
    /// How long a hold keeps its seats (`HOLD_TTL`, default 10 min, at most 30).
    var holdTTL: Duration
    /// How long a booking waits for payment (`PAYMENT_WINDOW`, default 15 min).
    var paymentWindow: Duration
    /// How late a payment made within the window may still arrive (`PAYMENT_GRACE`, default 2 min).
    var paymentGrace: Duration
    /// The most seats one hold may take (`MAX_SEATS_PER_HOLD`, default 10).
    var maxSeatsPerHold: Int
    /// How long a cancellation's refund may stay unconfirmed before its saga becomes
    /// `compensation_failed` for an operator (`REFUND_PENDING_BOUND`, default 1 h, 1 s to 7 days).
    var refundPendingBound: Duration
    /// How many payment events the saga coordinator applies at once in this process
    /// (`SAGA_CONSUMER_CONCURRENCY`, default 32; events of one booking always in order).
    var sagaConcurrency: Int
    /// How long the step log of a finished saga (refunded, cancelled, expired) is kept after its last
    /// change (`SAGA_STEP_RETENTION`, default 180 days); the saga and booking rows stay.
    var sagaStepRetention: Duration
    /// The per-customer hold limits: seats held at once in holds and bookings awaiting payment
    /// (`MAX_HELD_SEATS_PER_CUSTOMER`, default 20, 1 to 10,000) and hold attempts per minute
    /// (`HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE`, default 60, 1 to 1,000,000).
    var holdLimits: CustomerHoldLimits
    /// Token buckets per client application on the public routes (`API_KEY_RATE_LIMITS`, default none).
    var apiKeyRateLimits: APIKeyRateLimits
    /// Bookings of a cancelled event cancelled in one transaction (`EVENT_CANCELLATION_BATCH`,
    /// default 50, 1 to 1,000).
    var eventCancellationBatch: Int

    init(reader: ConfigurationReader) throws(ConfigurationError) {
        // The saga coordinator's 32 lanes confirm paid bookings; 16 connections of their own keep
        // confirmation up with intake on 2 cores (scripts/bench saga), where 8 let a backlog grow.
        service = try ServiceSettings(
            serviceName: "booking", defaultPort: 8080, requiresAPIKeys: true, defaultConsumerPoolSize: 16, reader: reader)
        holdTTL = try reader.duration("HOLD_TTL", default: .seconds(600), in: .seconds(1)...(.seconds(1800)))
        paymentWindow = try reader.duration("PAYMENT_WINDOW", default: .seconds(900), in: .seconds(1)...(.seconds(86_400)))
        paymentGrace = try reader.duration("PAYMENT_GRACE", default: .seconds(120), in: .zero...(.seconds(3600)))
        maxSeatsPerHold = try reader.integer("MAX_SEATS_PER_HOLD", default: 10, in: 1...100)
        refundPendingBound = try reader.duration(
            "REFUND_PENDING_BOUND", default: SagaDecider.Policy.defaultRefundPendingBound, in: .seconds(1)...(.seconds(7 * 86_400)))
        sagaConcurrency = try reader.integer("SAGA_CONSUMER_CONCURRENCY", default: 32, in: 1...256)
        sagaStepRetention = try reader.duration(
            "SAGA_STEP_RETENTION", default: .seconds(180 * 86_400), in: .seconds(86_400)...(.seconds(3650 * 86_400)))
        holdLimits = CustomerHoldLimits(
            maximumHeldSeats: try reader.integer("MAX_HELD_SEATS_PER_CUSTOMER", default: 20, in: 1...10_000),
            attempts: RateLimit(
                capacity: try reader.integer("HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE", default: 60, in: 1...1_000_000), period: .seconds(60)))
        eventCancellationBatch = try reader.integer("EVENT_CANCELLATION_BATCH", default: 50, in: 1...1000)
        if let limits = reader.string("API_KEY_RATE_LIMITS") {
            apiKeyRateLimits = try APIKeyRateLimits.parse(limits)
        } else {
            apiKeyRateLimits = APIKeyRateLimits()
        }
    }
}
