import Foundation

/// A booking and its saga as read at the start of a transaction: everything the decider needs.
public struct SagaSnapshot: Hashable, Sendable {
    public let bookingID: BookingID
    public var state: SagaState
    /// Moves by one with every transition; a write that finds another version lost a race.
    public var version: Int64
    public let amount: Money
    public let paymentDueAt: Date
    /// The payment the booking is paid (or being paid) with, once known.
    public var providerRef: String?
    public let eventID: EventID
    public let holdID: HoldID
    public let customerID: CustomerID
    public let hostID: HostID
    public var confirmedAt: Date?
    /// Operator resumes so far.
    public var attempts: Int
    /// When the event starts: the refund policy of a cancellation counts back from it.
    public let eventStartsAt: Date
    public let eventEndsAt: Date
    /// The seats the booking still holds (not released), in order.
    public var seats: [SeatID]
    /// The client application that created the booking (nil for bookings older than client scoping).
    public let clientID: String?
    /// Partial refunds of the booking's payment asked for and not failed: a cancellation refunds the
    /// rest, and a further partial refund at most the rest.
    public var partiallyRefunded: Money

    public init(
        bookingID: BookingID, state: SagaState, version: Int64, amount: Money, paymentDueAt: Date, providerRef: String?, eventID: EventID,
        holdID: HoldID, customerID: CustomerID, hostID: HostID, confirmedAt: Date?, attempts: Int, eventStartsAt: Date, eventEndsAt: Date,
        seats: [SeatID], clientID: String?
    ) {
        self.bookingID = bookingID
        self.state = state
        self.version = version
        self.amount = amount
        self.paymentDueAt = paymentDueAt
        self.providerRef = providerRef
        self.eventID = eventID
        self.holdID = holdID
        self.customerID = customerID
        self.hostID = hostID
        self.confirmedAt = confirmedAt
        self.attempts = attempts
        self.eventStartsAt = eventStartsAt
        self.eventEndsAt = eventEndsAt
        self.seats = seats
        self.clientID = clientID
        self.partiallyRefunded = .zero(amount.currency)
    }

    /// What is left to refund of the booking's payment.
    public var refundable: Money { Money(amount: max(0, amount.amount - partiallyRefunded.amount), currency: amount.currency) }
}

/// A refund the saga asked the payments service for (`booking.refund_requests`): what a provider's
/// `refund.succeeded` / `refund.failed` must match before it moves a saga.
public struct SagaRefundRequest: Hashable, Sendable {
    /// Why the refund was asked for.
    public enum Purpose: String, Hashable, Sendable {
        /// The booking's own payment, refunded because the booking was cancelled (or resumed by an operator).
        case cancellation
        /// A payment the booking must not keep (late, mismatched, duplicate, for no known booking).
        case compensation
        /// Part of the booking's payment, refunded by an operator while the booking stays confirmed.
        case partial
    }

    public enum Status: String, Hashable, Sendable {
        case requested, succeeded, failed
    }

    public let refundID: RefundID
    public let bookingID: BookingID?
    public let purpose: Purpose
    public let providerRef: String
    public let amount: Money
    public let status: Status
    public let requestedAt: Date
    /// Whether this is its booking's newest cancellation refund: the one the saga waits for.
    public let isCurrent: Bool

    public init(
        refundID: RefundID, bookingID: BookingID?, purpose: Purpose, providerRef: String, amount: Money, status: Status, requestedAt: Date,
        isCurrent: Bool
    ) {
        self.refundID = refundID
        self.bookingID = bookingID
        self.purpose = purpose
        self.providerRef = providerRef
        self.amount = amount
        self.status = status
        self.requestedAt = requestedAt
        self.isCurrent = isCurrent
    }

    /// The request a provider's report is about, among `candidates`: the one its refund id names,
    /// else the oldest open request of that payment for that amount (a report that carries no id of ours).
    public static func matching(
        reportedAs refundID: RefundID?, providerRef: String, amount: Money, among candidates: [SagaRefundRequest]
    ) -> SagaRefundRequest? {
        if let refundID, let named = candidates.first(where: { $0.refundID == refundID }) { return named }
        return
            candidates
            .filter { $0.providerRef == providerRef && $0.amount == amount && $0.status == .requested }
            .min { ($0.requestedAt, $0.refundID.description) < ($1.requestedAt, $1.refundID.description) }
    }
}
