import Foundation
import Postgres
import SharedModel

/// One line to append to the ledger (`payout.entries`); it is open (payable by a run) from the start.
struct LedgerEntryDraft: Sendable, Equatable {
    var hostID: String
    var currency: String
    var bookingID: UUID
    var kind: PayoutItem.Kind
    /// Signed minor units: credits positive, debits negative.
    var amount: Int64
    /// The event that caused it; with `kind`, unique.
    var sourceEventID: UUID
    var occurredAt: Date
    /// Revenue and fees only: they settle after the booking's event ends.
    var eventEndsAt: Date?
}

/// `payout.bookings`, `payout.refunds` and `payout.entries`: the only SQL of the ledger.
enum LedgerStore {
    /// What the ledger keeps of a confirmed booking.
    struct Booking: Sendable {
        var bookingID: UUID
        var hostID: String
        var currency: String
        var amount: Int64
        var fee: Int64
        var refunded: Int64
        var feeReversed: Int64
    }

    /// A refund of a booking, as received.
    struct Refund: Sendable {
        var eventID: UUID
        var bookingID: UUID
        var currency: String
        var amount: Int64
        var occurredAt: Date
    }

    /// A lost dispute whose debit is to be entered.
    struct LostDispute: Sendable {
        var provider: String
        var disputeRef: String
        /// The event that reported the loss (the entry's source).
        var eventID: UUID
        var currency: String
        var amount: Int64
        var closedAt: Date
    }

    /// Keeps an opened dispute (runs hold its booking's entries back while it is open); a dispute
    /// known before (by another report, or closed already) is left as it is.
    static func open(_ dispute: DisputeDetails, bookingID: UUID, in transaction: PostgresTransaction) throws {
        try transaction.query(
            """
            INSERT INTO payout.disputes (provider, dispute_ref, booking_id, currency, amount, status, opened_at)
            VALUES (\(dispute.provider), \(dispute.disputeRef), \(bookingID), \(dispute.amount.currency.code), \(dispute.amount.amount), 'open',
                    \(dispute.providerCreatedAt))
            ON CONFLICT (provider, dispute_ref) DO NOTHING
            """)
    }

    /// Closes a dispute (keeping it when its closing is the first report). Returns the loss to enter
    /// when this closed it as lost, else nil (won, or closed before).
    static func close(_ event: PaymentDisputeClosed, bookingID: UUID, eventID: UUID, in transaction: PostgresTransaction) throws -> LostDispute? {
        let dispute = event.dispute
        let lost = event.outcome == .lost
        let closedAt = dispute.providerCreatedAt
        let rows = try transaction.query(
            """
            INSERT INTO payout.disputes (provider, dispute_ref, booking_id, closed_event_id, currency, amount, status, opened_at, closed_at)
            VALUES (\(dispute.provider), \(dispute.disputeRef), \(bookingID), \(lost ? eventID : nil), \(dispute.amount.currency.code),
                    \(dispute.amount.amount), \(event.outcome.rawValue), \(closedAt), \(closedAt))
            ON CONFLICT (provider, dispute_ref) DO UPDATE
                SET status = EXCLUDED.status, closed_at = EXCLUDED.closed_at, closed_event_id = EXCLUDED.closed_event_id,
                    amount = EXCLUDED.amount, currency = EXCLUDED.currency
                WHERE payout.disputes.status = 'open'
            RETURNING 1
            """)
        guard lost, !rows.isEmpty else { return nil }
        return LostDispute(
            provider: dispute.provider, disputeRef: dispute.disputeRef, eventID: eventID, currency: dispute.amount.currency.code,
            amount: dispute.amount.amount, closedAt: closedAt)
    }

    /// The booking's lost disputes whose debit is not entered yet.
    static func waitingDisputes(of bookingID: UUID, in transaction: PostgresTransaction) throws -> [LostDispute] {
        try transaction.query(
            """
            SELECT provider, dispute_ref, closed_event_id, currency, amount, closed_at FROM payout.disputes
            WHERE booking_id = \(bookingID) AND status = 'lost' AND NOT entered ORDER BY closed_at, dispute_ref
            """
        ).map { row in
            LostDispute(
                provider: try row.decode(String.self, at: 0), disputeRef: try row.decode(String.self, at: 1),
                eventID: try row.decode(UUID.self, at: 2), currency: try row.decode(String.self, at: 3), amount: try row.decode(Int64.self, at: 4),
                closedAt: try row.decode(Date.self, at: 5))
        }
    }

    /// Marks a lost dispute's debit entered.
    static func entered(_ lost: LostDispute, in transaction: PostgresTransaction) throws {
        try transaction.query(
            "UPDATE payout.disputes SET entered = true WHERE provider = \(lost.provider) AND dispute_ref = \(lost.disputeRef)")
    }

    /// The host's own fee, if it has one.
    static func hostFeeBasisPoints(_ hostID: String, in transaction: PostgresTransaction) throws -> Int? {
        try transaction.query("SELECT fee_bps FROM payout.hosts WHERE host_id = \(hostID)").first.flatMap { try $0.decode(Int32?.self, at: 0) }
            .map(Int.init)
    }

    /// Records a confirmed booking; false when it was recorded before.
    static func insert(
        _ booking: Booking, basisPoints: Int, eventEndsAt: Date, confirmedAt: Date, in transaction: PostgresTransaction
    ) throws -> Bool {
        try !transaction.query(
            """
            INSERT INTO payout.bookings (booking_id, host_id, currency, amount, fee, fee_bps, event_ends_at, confirmed_at)
            VALUES (\(booking.bookingID), \(booking.hostID), \(booking.currency), \(booking.amount), \(booking.fee), \(Int32(basisPoints)),
                    \(eventEndsAt), \(confirmedAt))
            ON CONFLICT (booking_id) DO NOTHING RETURNING 1
            """
        ).isEmpty
    }

    /// The booking, locked until the transaction ends (its refunds are entered one at a time).
    static func lockedBooking(_ bookingID: UUID, in transaction: PostgresTransaction) throws -> Booking? {
        try transaction.query(
            """
            SELECT booking_id, host_id, currency, amount, fee, refunded, fee_reversed FROM payout.bookings
            WHERE booking_id = \(bookingID) FOR UPDATE
            """
        ).first.map { row in
            Booking(
                bookingID: try row.decode(UUID.self, at: 0), hostID: try row.decode(String.self, at: 1),
                currency: try row.decode(String.self, at: 2), amount: try row.decode(Int64.self, at: 3), fee: try row.decode(Int64.self, at: 4),
                refunded: try row.decode(Int64.self, at: 5), feeReversed: try row.decode(Int64.self, at: 6))
        }
    }

    /// Keeps a refund until it is entered; false when it was kept before.
    static func insert(_ refund: Refund, in transaction: PostgresTransaction) throws -> Bool {
        try !transaction.query(
            """
            INSERT INTO payout.refunds (event_id, booking_id, currency, amount, occurred_at)
            VALUES (\(refund.eventID), \(refund.bookingID), \(refund.currency), \(refund.amount), \(refund.occurredAt))
            ON CONFLICT (event_id) DO NOTHING RETURNING 1
            """
        ).isEmpty
    }

    /// The booking's refunds not entered yet, oldest first.
    static func waitingRefunds(of bookingID: UUID, in transaction: PostgresTransaction) throws -> [Refund] {
        try transaction.query(
            """
            SELECT event_id, booking_id, currency, amount, occurred_at FROM payout.refunds
            WHERE booking_id = \(bookingID) AND NOT entered ORDER BY occurred_at, event_id
            """
        ).map { row in
            Refund(
                eventID: try row.decode(UUID.self, at: 0), bookingID: try row.decode(UUID.self, at: 1), currency: try row.decode(String.self, at: 2),
                amount: try row.decode(Int64.self, at: 3), occurredAt: try row.decode(Date.self, at: 4))
        }
    }

    /// Marks a refund entered and moves the booking's running totals.
    static func entered(_ refund: Refund, booking: Booking, in transaction: PostgresTransaction) throws {
        try transaction.query("UPDATE payout.refunds SET entered = true WHERE event_id = \(refund.eventID)")
        try transaction.query(
            """
            UPDATE payout.bookings SET refunded = \(booking.refunded), fee_reversed = \(booking.feeReversed)
            WHERE booking_id = \(booking.bookingID)
            """)
    }

    /// Appends `entries` to the ledger and opens them, in one statement; an entry already appended (the
    /// same source event and kind) is skipped.
    static func append(_ entries: [LedgerEntryDraft], at now: Date, in transaction: PostgresTransaction) throws {
        guard !entries.isEmpty else { return }
        let rows = entries.map { entry -> PostgresStatement in
            """
            (\(entry.hostID), \(entry.currency), \(entry.bookingID), \(entry.kind.rawValue), \(entry.amount), \(entry.sourceEventID),
             \(entry.occurredAt), \(entry.eventEndsAt), \(now))
            """
        }
        try transaction.query(
            """
            WITH appended AS (
                INSERT INTO payout.entries (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
                VALUES \(PostgresStatement.joined(rows, separator: ", "))
                ON CONFLICT (source_event_id, kind) DO NOTHING
                RETURNING id, host_id, currency
            )
            INSERT INTO payout.open_entries (entry_id, host_id, currency) SELECT id, host_id, currency FROM appended
            """)
    }
}
