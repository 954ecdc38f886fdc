import Foundation
import Postgres
import SharedModel

/// `payments.payment_intents` and `payments.refunds`: what the provider answered the worker, one row
/// per booking's intent and per refund. The worker reads through it before calling the provider and
/// writes through it inside its inbox transaction.
struct ProviderRecordStore: Sendable {
    /// How a refund request ended at the provider.
    enum RefundOutcome: String, Sendable {
        /// The provider took the refund (or already held one for the payment).
        case accepted
        /// The provider refused it for good.
        case refused
    }

    /// Whether the booking's payment intent is already recorded.
    func hasPaymentIntent(for bookingID: BookingID, in transaction: PostgresTransaction) throws -> Bool {
        try !transaction.query("SELECT 1 FROM payments.payment_intents WHERE booking_id = \(bookingID.rawValue)").isEmpty
    }

    /// Whether the refund's outcome is already recorded.
    func hasRefund(_ refundID: RefundID, in transaction: PostgresTransaction) throws -> Bool {
        try !transaction.query("SELECT 1 FROM payments.refunds WHERE refund_id = \(refundID.rawValue)").isEmpty
    }

    /// Records the intent the provider created for `request`; false when one was recorded first.
    func recordPaymentIntent(
        _ request: PaymentRequested, provider: String, reference: String, at createdAt: Date, in transaction: PostgresTransaction
    ) throws -> Bool {
        try !transaction.query(
            """
            INSERT INTO payments.payment_intents (booking_id, provider, provider_ref, amount, currency, idempotency_key, created_at)
            VALUES (\(request.bookingID.rawValue), \(provider), \(reference), \(request.amount.amount), \(request.amount.currency.code),
                    \(request.idempotencyKey), \(createdAt))
            ON CONFLICT (booking_id) DO NOTHING
            RETURNING 1
            """
        ).isEmpty
    }

    /// Records how the refund ended at the provider; false when its outcome was recorded first.
    func recordRefund(
        _ request: RefundRequested, provider: String, outcome: RefundOutcome, providerRefundID: String?, error: String?, at requestedAt: Date,
        in transaction: PostgresTransaction
    ) throws -> Bool {
        try !transaction.query(
            """
            INSERT INTO payments.refunds
                (refund_id, booking_id, provider, provider_ref, provider_refund_id, amount, currency, idempotency_key, outcome, error, requested_at)
            VALUES (\(request.refundID.rawValue), \(request.bookingID?.rawValue), \(provider), \(request.providerRef), \(providerRefundID),
                    \(request.amount.amount), \(request.amount.currency.code), \(request.idempotencyKey), \(outcome.rawValue), \(error),
                    \(requestedAt))
            ON CONFLICT (refund_id) DO NOTHING
            RETURNING 1
            """
        ).isEmpty
    }
}
