import Foundation
import Messaging
import Postgres
import SharedModel

/// `booking.disputes`: the booking service's record of disputes of its bookings' payments (consumer
/// group `booking-saga`, beside the saga). A dispute is kept once per provider dispute id, whichever of
/// its reports arrives first; the booking shows the newest one. A dispute does not move the saga: the
/// booking stays as it is, the payout ledger holds the host's entries back while it is open and debits
/// the host when it is lost, and an operator is told by a `review` dead letter when a dispute opens
/// (to answer it with evidence at the provider) and when one is lost.
enum DisputeRecorder {
    /// Whether `type` is a dispute event this recorder applies.
    static func handles(_ type: String) -> Bool {
        type == PaymentDisputed.eventType || type == PaymentDisputeClosed.eventType
    }

    /// Applies a dispute event in the consumer's inbox transaction.
    static func apply(_ envelope: EventEnvelope, at now: Date, in transaction: PostgresTransaction) throws {
        switch envelope.type {
        case PaymentDisputed.eventType:
            let dispute = try envelope.decode(PaymentDisputed.self).dispute
            guard try opened(dispute, at: now, in: transaction) else { return }
            try review(
                envelope,
                "dispute \(dispute.disputeRef) of payment \(dispute.providerRef) (\(describe(dispute.bookingID))) opened for \(dispute.amount)"
                    + "\(dispute.reason.map { ", reason \($0)" } ?? ""): answer it at the provider with the booking's evidence; the host's payable "
                    + "entries of the booking are held back from payouts until it closes",
                at: now, in: transaction)
        case PaymentDisputeClosed.eventType:
            let closed = try envelope.decode(PaymentDisputeClosed.self)
            guard try self.closed(closed, at: now, in: transaction), closed.outcome == .lost else { return }
            let dispute = closed.dispute
            try review(
                envelope,
                "dispute \(dispute.disputeRef) of payment \(dispute.providerRef) (\(describe(dispute.bookingID))) lost: \(dispute.amount) "
                    + "stays with the customer and is debited to the host in the payout ledger; the booking keeps its status and seats",
                at: now, in: transaction)
        default:
            return
        }
    }

    private static func describe(_ bookingID: BookingID?) -> String {
        bookingID.map { "booking \($0)" } ?? "no booking known for it"
    }

    /// Records an opened dispute; false when it was recorded before (by either report).
    private static func opened(_ dispute: DisputeDetails, at now: Date, in transaction: PostgresTransaction) throws -> Bool {
        try !transaction.query(
            """
            INSERT INTO booking.disputes
                (provider, dispute_ref, booking_id, provider_ref, amount, currency, reason, status, provider_status, opened_at, updated_at)
            VALUES (\(dispute.provider), \(dispute.disputeRef), \(dispute.bookingID?.uuid), \(dispute.providerRef), \(dispute.amount.amount),
                    \(dispute.amount.currency.code), \(dispute.reason), 'open', \(dispute.status), \(dispute.providerCreatedAt), \(now))
            ON CONFLICT (provider, dispute_ref) DO NOTHING
            RETURNING 1
            """
        ).isEmpty
    }

    /// Closes a dispute (recording it when its closing comes first); false when it was closed before.
    private static func closed(_ event: PaymentDisputeClosed, at now: Date, in transaction: PostgresTransaction) throws -> Bool {
        let dispute = event.dispute
        return try !transaction.query(
            """
            INSERT INTO booking.disputes
                (provider, dispute_ref, booking_id, provider_ref, amount, currency, reason, status, provider_status, opened_at, closed_at,
                 updated_at)
            VALUES (\(dispute.provider), \(dispute.disputeRef), \(dispute.bookingID?.uuid), \(dispute.providerRef), \(dispute.amount.amount),
                    \(dispute.amount.currency.code), \(dispute.reason), \(event.outcome.rawValue), \(dispute.status), \(dispute.providerCreatedAt),
                    \(dispute.providerCreatedAt), \(now))
            ON CONFLICT (provider, dispute_ref) DO UPDATE
                SET status = EXCLUDED.status, provider_status = EXCLUDED.provider_status, amount = EXCLUDED.amount,
                    closed_at = EXCLUDED.closed_at, updated_at = EXCLUDED.updated_at
                WHERE booking.disputes.status = 'open'
            RETURNING 1
            """
        ).isEmpty
    }

    private static func review(_ envelope: EventEnvelope, _ error: String, at now: Date, in transaction: PostgresTransaction) throws {
        _ = try DeadLetterStore.record(
            kind: .review, stream: Streams.payments, consumer: SagaCoordinator.group, envelope: envelope, error: error, attempts: 1,
            firstFailedAt: now, clock: .fixed(now), in: transaction)
    }
}

/// A booking's newest dispute, as `GET /v1/bookings/{id}` shows it (`dispute`).
struct BookingDispute: Sendable, Hashable, Encodable {
    let id: String
    let status: String
    let amount: Money
    let reason: String?
    let openedAt: Date
    let closedAt: Date?

    private enum CodingKeys: String, CodingKey {
        case id, status, amount, currency, reason
        case openedAt = "opened_at"
        case closedAt = "closed_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(amount.amount, forKey: .amount)
        try container.encode(amount.currency.code, forKey: .currency)
        try container.encode(reason, forKey: .reason)
        try container.encode(RFC3339.string(from: openedAt), forKey: .openedAt)
        try container.encode(closedAt.map(RFC3339.string(from:)), forKey: .closedAt)
    }
}
