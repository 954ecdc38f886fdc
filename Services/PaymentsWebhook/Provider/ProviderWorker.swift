import Foundation
import Logging
import Messaging
import SharedModel

/// The consumer group `payments-provider` on `stream:booking`: carries out what the booking saga asks
/// of the payment provider.
///
/// - `payment.requested`: creates the provider's payment intent (with `metadata[booking_id]` and the
///   event's idempotency key), records it, and emits `payment.intent_created` - once per booking,
///   however often the event is delivered (`payments.payment_intents` is keyed by booking).
/// - `refund.requested`: asks the provider for the refund with the event's idempotency key. An
///   accepted refund is recorded; `refund.succeeded` follows from the provider's `charge.refunded`
///   webhook. A permanent refusal is recorded and emits `refund.failed`. Transient failures throw, so
///   the consumer retries with backoff (the same key: never a second refund) and dead-letters after
///   its attempts. With `lookup_existing` (an operator's `saga resume`) the provider's refunds of the
///   payment are listed first, and a succeeded or pending one is used instead of a new refund.
/// - every other event on the stream: nothing to do.
///
/// The provider is called outside any transaction; what it answered is committed afterwards with the
/// consumer's inbox row. A crash between the two repeats the call with the same key, which the
/// provider answers with the same object.
struct ProviderWorker: StreamHandler {
    static let group = "payments-provider"

    let provider: any PaymentProvider
    let records: ProviderRecordStore
    let logger: Logger
    let clock: WallClock

    /// `clock` dates the records and the events the worker emits.
    init(provider: any PaymentProvider, records: ProviderRecordStore = ProviderRecordStore(), logger: Logger, clock: WallClock = .system) {
        self.provider = provider
        self.records = records
        self.logger = logger
        self.clock = clock
    }

    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        switch envelope.type {
        case PaymentRequested.eventType: try await createIntent(try envelope.decode(PaymentRequested.self), cause: envelope, context: context)
        case RefundRequested.eventType: try await refund(try envelope.decode(RefundRequested.self), cause: envelope, context: context)
        default: return
        }
    }

    private func createIntent(_ event: PaymentRequested, cause: EventEnvelope, context: HandlerContext) async throws {
        let records = self.records
        guard try await !context.read({ try records.hasPaymentIntent(for: event.bookingID, in: $0) }) else { return }
        let intent = try await provider.createPaymentIntent(
            PaymentIntentRequest(bookingID: event.bookingID, customerID: event.customerID, amount: event.amount, idempotencyKey: event.idempotencyKey)
        )
        let providerName = provider.name
        let created = PaymentIntentCreated(
            bookingID: event.bookingID, provider: providerName, providerRef: intent.reference, clientSecret: intent.clientSecret)
        let draft = try EventEnvelope(event: created, causedBy: cause, occurredAt: clock.now(), sequence: 0, producer: .paymentsWebhook)
        let reference = intent.reference
        try await context.commit { transaction in
            guard try records.recordPaymentIntent(event, provider: providerName, reference: reference, at: draft.occurredAt, in: transaction) else {
                return
            }
            try Outbox.enqueue(drafts: [draft], after: [], in: transaction)
        }
        logger.info(
            "payment intent created",
            metadata: ["booking_id": "\(event.bookingID)", "provider_ref": "\(intent.reference)", "correlation_id": "\(cause.correlationID)"])
    }

    private func refund(_ event: RefundRequested, cause: EventEnvelope, context: HandlerContext) async throws {
        let records = self.records
        guard try await !context.read({ try records.hasRefund(event.refundID, in: $0) }) else { return }
        let request = RefundRequest(
            refundID: event.refundID, bookingID: event.bookingID, paymentReference: event.providerRef, amount: event.amount,
            idempotencyKey: event.idempotencyKey)
        let providerName = provider.name
        let requestedAt = clock.now()
        let metadata: Logger.Metadata = [
            "refund_id": "\(event.refundID)", "booking_id": "\(event.bookingID.map(\.description) ?? "none")",
            "correlation_id": "\(cause.correlationID)",
        ]
        if event.lookupExisting, try await settledByExistingRefund(event, cause: cause, context: context, at: requestedAt, metadata: metadata) {
            return
        }
        let answer: Result<ProviderRefund, PaymentProviderError>
        do {
            answer = .success(try await provider.createRefund(request))
        } catch {
            answer = .failure(error)
        }
        switch answer {
        case .success(let refund):
            try await context.commit { transaction in
                _ = try records.recordRefund(
                    event, provider: providerName, outcome: .accepted, providerRefundID: refund.reference, error: nil, at: requestedAt,
                    in: transaction)
            }
            logger.info("refund requested from the provider", metadata: metadata.merging(["provider_refund_id": "\(refund.reference)"]) { $1 })
        case .failure(.refused(let status, let code, let message)):
            let error = "\(status)\(code.map { " \($0)" } ?? ""): \(message)"
            let failed = RefundFailed(
                refundID: event.refundID, bookingID: event.bookingID, providerRef: event.providerRef, amount: event.amount, error: error)
            let draft = try EventEnvelope(event: failed, causedBy: cause, occurredAt: requestedAt, sequence: 0, producer: .paymentsWebhook)
            try await context.commit { transaction in
                guard
                    try records.recordRefund(
                        event, provider: providerName, outcome: .refused, providerRefundID: nil, error: error, at: requestedAt, in: transaction)
                else { return }
                try Outbox.enqueue(drafts: [draft], after: [], in: transaction)
            }
            logger.warning("the provider refused a refund", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        case .failure(let error):
            throw error
        }
    }

    /// An operator's resume (`lookup_existing`): when the provider already holds a succeeded or pending
    /// refund of the payment for this amount (its webhook lost, or the request went through after all), that refund
    /// is recorded under this refund's id instead of asking for a second one. A succeeded one also
    /// emits `refund.succeeded` (the webhook that would have said so may never come); a pending one
    /// is reported by the provider's `charge.refunded`. Returns whether such a refund was found.
    private func settledByExistingRefund(
        _ event: RefundRequested, cause: EventEnvelope, context: HandlerContext, at requestedAt: Date, metadata: Logger.Metadata
    ) async throws -> Bool {
        let listed: Result<[ProviderRefund], PaymentProviderError>
        do {
            listed = .success(try await provider.refunds(ofPayment: event.providerRef))
        } catch {
            listed = .failure(error)
        }
        let existing: [ProviderRefund]
        switch listed {
        case .success(let refunds):
            existing = refunds
        case .failure(.refused(let status, _, let message)):
            // The provider knows no such payment: nothing was refunded; asking for a refund will say why.
            logger.warning(
                "the provider refused to list the payment's refunds", metadata: metadata.merging(["error": "\(status): \(message)"]) { $1 })
            return false
        case .failure(let error):
            throw error
        }
        // Only a refund of this amount: partial refunds of the same payment are refunds of their own.
        let sameAmount = existing.filter { ($0.amount ?? event.amount.amount) == event.amount.amount }
        guard let found = sameAmount.first(where: { $0.status == "succeeded" }) ?? sameAmount.first(where: \.isSucceededOrPending) else {
            return false
        }
        let records = self.records
        let providerName = provider.name
        let drafts: [EventEnvelope] =
            found.status == "succeeded"
            ? [
                try EventEnvelope(
                    event: RefundSucceeded(
                        refundID: event.refundID, bookingID: event.bookingID, providerRef: event.providerRef,
                        amount: Money(amount: found.amount ?? event.amount.amount, currency: event.amount.currency)),
                    causedBy: cause, occurredAt: requestedAt, sequence: 0, producer: .paymentsWebhook)
            ] : []
        try await context.commit { transaction in
            let recorded = try records.recordRefund(
                event, provider: providerName, outcome: .accepted, providerRefundID: found.reference, error: nil, at: requestedAt, in: transaction)
            guard recorded, !drafts.isEmpty else { return }
            try Outbox.enqueue(drafts: drafts, after: [], in: transaction)
        }
        logger.info(
            "the provider already holds a refund of this payment; no second refund requested",
            metadata: metadata.merging(["provider_refund_id": "\(found.reference)", "provider_refund_status": "\(found.status)"]) { $1 })
        return true
    }
}
