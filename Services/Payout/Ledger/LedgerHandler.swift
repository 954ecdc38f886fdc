import Foundation
import Logging
import Messaging
import Postgres
import SharedModel

/// The consumer group `payout-ledger` on `stream:booking` and `stream:payments`: turns confirmed
/// bookings and their refunds into ledger entries (DESIGN.md, Payout), in the inbox transaction.
///
/// - `booking.confirmed`: `revenue` (+amount) and `fee` (-fee, at the host's rate or the platform's)
///   entries, payable once the booking's event has ended `PAYOUT_SETTLEMENT_DELAY` before a run's
///   cut-off. A free booking has neither.
/// - `refund.succeeded` of a booking: a `refund` entry (-this refund's amount) and a `fee_reversal`
///   (+the fee's share of it, ``LedgerRule/feeReversed(fee:amount:refunded:)``), payable at once. A
///   refund that arrives before its booking's confirmation (the streams are not ordered with each
///   other) waits in `payout.refunds` and is entered with the confirmation; a refund of a booking
///   that was never confirmed is kept there and never entered (the booking earned nothing).
/// - `payment.disputed` of a booking: the dispute is kept open, and runs hold the booking's entries
///   back until it closes (``PayoutRunStore``).
/// - `payment.dispute_closed`: `won` releases the held entries to the next run; `lost` also appends a
///   `dispute` entry (-the disputed amount) for the booking's host, payable at once. The platform keeps
///   its fee: a chargeback is the host's sale undone, not a refund the host granted. A loss that
///   arrives before the booking's confirmation waits in `payout.disputes` like a refund.
/// - every other event: nothing.
struct LedgerHandler: TransactionalStreamHandler {
    static let group = "payout-ledger"
    /// The streams the ledger reads.
    static let streams = [Streams.stream(for: .booking), Streams.stream(for: .paymentsWebhook)]

    /// The fee of hosts without their own, in basis points.
    let platformFeeBasisPoints: Int
    let clock: WallClock

    func apply(_ envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        switch envelope.type {
        case BookingConfirmed.eventType: try confirm(try envelope.decode(BookingConfirmed.self), envelope: envelope, in: transaction)
        case RefundSucceeded.eventType: try refund(try envelope.decode(RefundSucceeded.self), envelope: envelope, in: transaction)
        case PaymentDisputed.eventType: try disputeOpened(try envelope.decode(PaymentDisputed.self).dispute, in: transaction)
        case PaymentDisputeClosed.eventType: try disputeClosed(try envelope.decode(PaymentDisputeClosed.self), envelope: envelope, in: transaction)
        default: return
        }
    }

    private func disputeOpened(_ dispute: DisputeDetails, in transaction: PostgresTransaction) throws {
        guard let bookingID = dispute.bookingID else { return }
        try LedgerStore.open(dispute, bookingID: bookingID.uuid, in: transaction)
    }

    private func disputeClosed(_ event: PaymentDisputeClosed, envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        guard let bookingID = event.dispute.bookingID,
            let lost = try LedgerStore.close(event, bookingID: bookingID.uuid, eventID: envelope.id.uuid, in: transaction),
            let booking = try LedgerStore.lockedBooking(bookingID.uuid, in: transaction)
        else { return }
        try LedgerStore.append(try enter(lost, of: booking, in: transaction), at: clock.now(), in: transaction)
    }

    /// The `dispute` entry of a lost dispute against `booking`, and the dispute marked entered.
    private func enter(
        _ lost: LedgerStore.LostDispute, of booking: LedgerStore.Booking, in transaction: PostgresTransaction
    ) throws
        -> [LedgerEntryDraft]
    {
        guard lost.currency == booking.currency else {
            throw LedgerError.currencyMismatch(bookingID: booking.bookingID, bookingCurrency: booking.currency, refundCurrency: lost.currency)
        }
        try LedgerStore.entered(lost, in: transaction)
        return [draft(booking, kind: .dispute, amount: -lost.amount, source: lost.eventID, at: lost.closedAt, endsAt: nil)]
    }

    private func confirm(_ event: BookingConfirmed, envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        let hostID = event.hostID.description
        let basisPoints = try LedgerStore.hostFeeBasisPoints(hostID, in: transaction) ?? platformFeeBasisPoints
        let amount = event.amount.amount
        var booking = LedgerStore.Booking(
            bookingID: event.bookingID.uuid, hostID: hostID, currency: event.amount.currency.code, amount: amount,
            fee: LedgerRule.fee(amount: amount, basisPoints: basisPoints), refunded: 0, feeReversed: 0)
        guard
            try LedgerStore.insert(booking, basisPoints: basisPoints, eventEndsAt: event.eventEndsAt, confirmedAt: event.confirmedAt, in: transaction)
        else { return }
        // The confirmation is the source of both entries (one of each kind per event).
        let source = envelope.id.uuid
        var entries: [LedgerEntryDraft] = []
        if amount > 0 {
            entries.append(draft(booking, kind: .revenue, amount: amount, source: source, at: event.confirmedAt, endsAt: event.eventEndsAt))
        }
        if booking.fee > 0 {
            entries.append(draft(booking, kind: .fee, amount: -booking.fee, source: source, at: event.confirmedAt, endsAt: event.eventEndsAt))
        }
        for refund in try LedgerStore.waitingRefunds(of: booking.bookingID, in: transaction) {
            entries += try enter(refund, into: &booking, in: transaction)
        }
        for lost in try LedgerStore.waitingDisputes(of: booking.bookingID, in: transaction) {
            entries += try enter(lost, of: booking, in: transaction)
        }
        try LedgerStore.append(entries, at: clock.now(), in: transaction)
    }

    private func refund(_ event: RefundSucceeded, envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        guard let bookingID = event.bookingID, event.amount.amount > 0 else { return }
        let refund = LedgerStore.Refund(
            eventID: envelope.id.uuid, bookingID: bookingID.uuid, currency: event.amount.currency.code, amount: event.amount.amount,
            occurredAt: envelope.occurredAt)
        guard try LedgerStore.insert(refund, in: transaction),
            var booking = try LedgerStore.lockedBooking(bookingID.uuid, in: transaction)
        else { return }
        try LedgerStore.append(try enter(refund, into: &booking, in: transaction), at: clock.now(), in: transaction)
    }

    /// The entries of `refund` against `booking` (whose running totals move), and the refund marked entered.
    private func enter(
        _ refund: LedgerStore.Refund, into booking: inout LedgerStore.Booking, in transaction: PostgresTransaction
    ) throws
        -> [LedgerEntryDraft]
    {
        guard refund.currency == booking.currency else {
            throw LedgerError.currencyMismatch(bookingID: booking.bookingID, bookingCurrency: booking.currency, refundCurrency: refund.currency)
        }
        booking.refunded += refund.amount
        let reversedNow = LedgerRule.feeReversed(fee: booking.fee, amount: booking.amount, refunded: booking.refunded)
        let reversal = reversedNow - booking.feeReversed
        booking.feeReversed = reversedNow
        try LedgerStore.entered(refund, booking: booking, in: transaction)
        var entries = [draft(booking, kind: .refund, amount: -refund.amount, source: refund.eventID, at: refund.occurredAt, endsAt: nil)]
        if reversal > 0 {
            entries.append(draft(booking, kind: .feeReversal, amount: reversal, source: refund.eventID, at: refund.occurredAt, endsAt: nil))
        }
        return entries
    }

    private func draft(
        _ booking: LedgerStore.Booking, kind: PayoutItem.Kind, amount: Int64, source: UUID, at occurredAt: Date, endsAt: Date?
    ) -> LedgerEntryDraft {
        LedgerEntryDraft(
            hostID: booking.hostID, currency: booking.currency, bookingID: booking.bookingID, kind: kind, amount: amount, sourceEventID: source,
            occurredAt: occurredAt, eventEndsAt: endsAt)
    }
}

/// An event the ledger cannot enter; the consumer retries it and then dead-letters it for an operator.
enum LedgerError: Error, CustomStringConvertible {
    case currencyMismatch(bookingID: UUID, bookingCurrency: String, refundCurrency: String)

    var description: String {
        switch self {
        case .currencyMismatch(let id, let bookingCurrency, let refundCurrency):
            "a refund or dispute in \(refundCurrency) of booking \(id.lowercasedString), which was paid in \(bookingCurrency)"
        }
    }
}
