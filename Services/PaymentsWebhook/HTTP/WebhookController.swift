import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ServiceKit
import SharedModel
import WebhookSignatures

extension HTTPField.Name {
    static let stripeSignature = HTTPField.Name("Stripe-Signature")!
    static let webhookID = HTTPField.Name("webhook-id")!
    static let webhookTimestamp = HTTPField.Name("webhook-timestamp")!
    static let webhookSignature = HTTPField.Name("webhook-signature")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}

/// `POST /v1/webhooks/stripe` and `POST /v1/payment-events`: verify the signature over the raw bytes
/// before anything reads them, then store the delivery once with its domain event (one
/// transaction), and answer only after the commit. Nothing here calls another service.
///
/// | outcome | status | stored |
/// |---|---|---|
/// | source over its budget of unverified requests | 429 + `Retry-After` | nothing |
/// | a signature header over 4 KiB (answered before the body is read) | 400 `invalid_signature` | nothing |
/// | missing, malformed or wrong signature, stale or future timestamp | 400 `invalid_signature` | nothing |
/// | verified, body unreadable for its type | 400 `malformed_payload` | kept once per body (`malformed`) |
/// | verified, mapped type | 200 | row + domain event in the outbox (`accepted`) |
/// | verified, other type | 200 | row (`ignored`) |
/// | delivered before | 200, `duplicate: true` | nothing more |
/// | Postgres down | 503 | nothing (the sender retries) |
struct WebhookController: Sendable {
    let store: ProviderEventStore
    let stripeSecrets: [String]
    let paymentEventsSecrets: [StandardWebhookSecret]
    let tolerance: Duration
    let limiter: UnverifiedRequestLimiter
    let clientAddresses: ClientAddressResolver
    /// Dates each delivery's arrival, against which its signature's timestamp is checked.
    let clock: WallClock

    init(
        store: ProviderEventStore, stripeSecrets: [String], paymentEventsSecrets: [StandardWebhookSecret], tolerance: Duration,
        limiter: UnverifiedRequestLimiter, clientAddresses: ClientAddressResolver, clock: WallClock = .system
    ) {
        self.store = store
        self.stripeSecrets = stripeSecrets
        self.paymentEventsSecrets = paymentEventsSecrets
        self.tolerance = tolerance
        self.limiter = limiter
        self.clientAddresses = clientAddresses
        self.clock = clock
        DeliveryMetrics.register()
    }

    func addRoutes(to router: Router<ServiceRequestContext>) {
        router.post("/v1/webhooks/stripe") { request, context in
            try await receive(request, context: context, source: .stripe)
        }
        router.post("/v1/payment-events") { request, context in
            try await receive(request, context: context, source: .internal)
        }
    }

    /// The longest signature header read (`Stripe-Signature`, `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`, each with all its field lines): a real one is well under 1 KiB.
    static let maximumSignatureHeaderBytes = 4096

    private func receive(_ request: Request, context: ServiceRequestContext, source: PaymentSource) async throws -> Response {
        let metrics = DeliveryMetrics(source: source)
        let sender = senderAddress(request, context: context)
        if let wait = limiter.admission(for: sender) { throw rateLimited(wait, metrics: metrics) }
        // Refused before the body is read; Hummingbird then discards the unread body and keeps the
        // connection, so the client sees this answer.
        if let name = oversizedSignatureHeader(request, source: source) {
            if let wait = limiter.spend(from: sender) { throw rateLimited(wait, metrics: metrics) }
            throw refusal(
                SignatureRefusal(message: "the \(name) header is longer than \(Self.maximumSignatureHeaderBytes) bytes"), source, metrics, context)
        }
        let body = Array(buffer: try await request.body.collect(upTo: context.maxUploadSize))
        let receivedAt = clock.now()
        // The token is spent before verifying and given back once verified: between the two nothing
        // awaits, so concurrent forgeries cannot all be verified before the first failure counts.
        if let wait = limiter.spend(from: sender) { throw rateLimited(wait, metrics: metrics) }
        let delivery: ProviderDelivery
        do {
            delivery = try verify(request, body: body, source: source, receivedAt: receivedAt)
        } catch {
            throw refusal(error, source, metrics, context)
        }
        limiter.refund(to: sender)

        let record: ProviderEventRecord
        do {
            record =
                try source == .stripe
                ? StripeEventReader.read(body, receivedAt: receivedAt) : PaymentEventReader.read(body, receivedAt: receivedAt)
        } catch {
            let id = try await store.storeMalformed(delivery, reason: error.reason)
            metrics.count(.malformed)
            context.logger.warning(
                "verified webhook with a malformed body kept for inspection",
                metadata: ["source": "\(source.rawValue)", "stored_id": "\(id)", "reason": "\(error.reason)"])
            throw APIError(
                .badRequest, code: .malformedPayload, message: "the payload is not a valid \(source.rawValue) event: \(error.reason)",
                details: ["stored_id": .string(id.lowercasedString)])
        }

        let outcome = try await store.store(record, delivery: delivery, correlationID: context.correlationID)
        switch outcome {
        case .stored(_, let status): metrics.count(status == .accepted ? .accepted : .ignored)
        case .duplicate: metrics.count(.duplicate)
        }
        return try .json(ReceiptBody(record: record, outcome: outcome))
    }

    private func verify(
        _ request: Request, body: [UInt8], source: PaymentSource, receivedAt: Date
    ) throws(SignatureRefusal) -> ProviderDelivery {
        let tolerance = tolerance.timeInterval
        switch source {
        case .stripe:
            do throws(StripeSignature.Failure) {
                let signedAt = try StripeSignature.verify(
                    payload: body, header: request.headers.value(of: .stripeSignature), secrets: stripeSecrets, now: receivedAt,
                    tolerance: tolerance)
                return ProviderDelivery(source: source, deliveryID: nil, body: body, signedAt: signedAt, receivedAt: receivedAt)
            } catch {
                throw SignatureRefusal(stripe: error)
            }
        case .internal:
            let id = request.headers.value(of: .webhookID)
            // The id is stored beside the delivery: it must fit a text column.
            if let id, id.utf8.count > 255 || id.unicodeScalars.contains("\u{0}") {
                throw SignatureRefusal(message: "the webhook-id header is malformed")
            }
            do throws(StandardWebhooks.Failure) {
                let signedAt = try StandardWebhooks.verify(
                    payload: body, id: id, timestamp: request.headers.value(of: .webhookTimestamp),
                    signatures: request.headers.value(of: .webhookSignature), secrets: paymentEventsSecrets, now: receivedAt,
                    tolerance: tolerance)
                return ProviderDelivery(source: source, deliveryID: id, body: body, signedAt: signedAt, receivedAt: receivedAt)
            } catch {
                throw SignatureRefusal(standard: error)
            }
        }
    }

    /// The first of the route's signature headers longer than ``maximumSignatureHeaderBytes``.
    private func oversizedSignatureHeader(_ request: Request, source: PaymentSource) -> HTTPField.Name? {
        let names: [HTTPField.Name] = source == .stripe ? [.stripeSignature] : [.webhookID, .webhookTimestamp, .webhookSignature]
        return names.first { name in
            request.headers[values: name].reduce(0) { $0 + $1.utf8.count } > Self.maximumSignatureHeaderBytes
        }
    }

    private func rateLimited(_ wait: Duration, metrics: DeliveryMetrics) -> APIError {
        metrics.count(.rateLimited)
        let seconds = wait.wholeSecondsRoundedUp(minimum: 1)
        return APIError(
            .tooManyRequests, code: .rateLimited, message: "too many unverified requests from this source; retry later",
            headers: [.retryAfter: String(seconds)])
    }

    private func refusal(_ error: SignatureRefusal, _ source: PaymentSource, _ metrics: DeliveryMetrics, _ context: ServiceRequestContext) -> APIError
    {
        metrics.count(.badSignature)
        // Debug only: a flood of forgeries must not flood the logs; `webhook_deliveries_total` counts them.
        context.logger.debug("webhook refused: bad signature", metadata: ["source": "\(source.rawValue)", "reason": "\(error)"])
        return APIError(.badRequest, code: .invalidSignature, message: error.message)
    }

    /// The request's source for the unverified-request budget (see ``ClientAddressResolver``).
    private func senderAddress(_ request: Request, context: ServiceRequestContext) -> ClientSource {
        clientAddresses.client(peer: context.peerAddress, forwardedFor: request.headers[values: .forwardedFor])
    }
}

/// Why a signature was refused, in words that never include a secret or an expected signature.
struct SignatureRefusal: Error, CustomStringConvertible {
    let message: String

    init(message: String) {
        self.message = message
    }

    init(stripe failure: StripeSignature.Failure) {
        message =
            switch failure {
            case .missingHeader: "the Stripe-Signature header is missing"
            case .malformedHeader: "the Stripe-Signature header is malformed"
            case .noV1Signature: "the Stripe-Signature header has no v1 signature"
            case .timestampOutOfTolerance: "the signature's timestamp is outside the tolerance"
            case .noMatch, .noSecretConfigured: "no signature matches"
            }
    }

    init(standard failure: StandardWebhooks.Failure) {
        message =
            switch failure {
            case .missingHeader(let name): "the \(name) header is missing"
            case .malformedHeader(let name): "the \(name) header is malformed"
            case .timestampOutOfTolerance: "the signature's timestamp is outside the tolerance"
            case .noMatch: "no signature matches"
            }
    }

    var description: String { message }
}

/// The 200 answer: which stored row the delivery is, and whether it was a repeat.
struct ReceiptBody: Encodable {
    let received = true
    let id: String
    let providerEventID: String
    let status: ProviderEventStatus
    let duplicate: Bool

    init(record: ProviderEventRecord, outcome: StoreOutcome) {
        providerEventID = record.providerEventID.rawValue
        switch outcome {
        case .stored(let id, let status):
            self.id = id.lowercasedString
            self.status = status
            duplicate = false
        case .duplicate(let id, let status):
            self.id = id.lowercasedString
            self.status = status
            duplicate = true
        }
    }

    private enum CodingKeys: String, CodingKey {
        case received, id, status, duplicate
        case providerEventID = "provider_event_id"
    }
}

/// `webhook_deliveries_total{source, outcome}`.
struct DeliveryMetrics {
    enum Outcome: String, CaseIterable {
        case accepted, ignored, duplicate, malformed
        case badSignature = "bad_signature"
        case rateLimited = "rate_limited"
    }

    let source: PaymentSource

    func count(_ outcome: Outcome) {
        Self.counters[source]?[outcome]?.increment()
    }

    /// Registers every source and outcome at zero, so `increase()` sees the first of each.
    static func register() {
        _ = counters
    }

    /// Made once: creating a counter goes through the metrics factory's lock and lookup.
    private static let counters: [PaymentSource: [Outcome: Counter]] = Dictionary(
        uniqueKeysWithValues: PaymentSource.allCases.map { source in
            (
                source,
                Dictionary(
                    uniqueKeysWithValues: Outcome.allCases.map { outcome in
                        (
                            outcome,
                            Counter(label: "webhook_deliveries_total", dimensions: [("source", source.rawValue), ("outcome", outcome.rawValue)])
                        )
                    })
            )
        })
}
