import Foundation

/// What the saga does about one input: the decider's answer, applied by a repository in one
/// transaction. A value: no I/O happened to make it, and applying it is all the I/O there is.
public struct SagaDecision: Sendable {
    /// The saga moves, with everything the move writes to its booking.
    public struct Transition: Hashable, Sendable {
        public let from: SagaState
        public let to: SagaState
        /// The saga's version the move is made from; the repository refuses it when the row moved.
        public let fromVersion: Int64
        /// The booking status stored beside the new state.
        public let bookingStatus: BookingStatus
        /// The booking timestamps set to the transition's time.
        public let milestones: BookingMilestones
        /// The payment the booking is now paid with, when the move names one.
        public let paymentReference: String?
        /// Whether the booking's seats are released (in Postgres; Redis follows after the commit).
        public let releasesSeats: Bool
        /// The saga's new `last_error` (nil clears it).
        public let lastError: String?
        /// The saga's new deadline (nil: none).
        public let deadline: Date?
        /// Whether an operator's attempt is counted.
        public let countsAttempt: Bool
        /// The step logged for the move.
        public let step: SagaStep
    }

    /// A refund to ask for, recorded so its outcome can be matched.
    public struct RefundRequest: Hashable, Sendable {
        public let event: RefundRequested
        public let purpose: SagaRefundRequest.Purpose
        /// The operator's note of a partial refund.
        public var note: String? = nil
    }

    /// A recorded refund request that the provider answered.
    public struct RefundCompletion: Hashable, Sendable {
        public let refundID: RefundID
        public let status: SagaRefundRequest.Status
        public let providerRefundRef: String?
    }

    /// What an adapter tells its caller.
    public enum Verdict: Hashable, Sendable {
        /// The decision is applied (it may be only a log step or a review).
        case applied
        /// The input changes nothing about this booking (nothing is written).
        case ignored
        /// A cancellation found the booking cancelled already (or its refund on the way or done).
        case alreadyCancelled
        /// A cancellation found the saga in a state it cannot cancel from.
        case notCancellable(SagaState)
        /// A resume found the saga in a state other than `compensation_failed`.
        case notResumable(SagaState)
        /// A resume moved the saga to `refund_pending` with this attempt and idempotency key.
        case resumed(attempt: Int, idempotencyKey: String)
        /// A partial refund was asked for (`refund.requested` in the outbox).
        case partialRefundRequested(RefundRequested)
        /// A partial refund found the saga in a state other than `confirmed`.
        case notRefundable(SagaState)
        /// A partial refund asked for more than is left: the amount paid minus the refunds asked for
        /// and not failed.
        case refundExceedsPayment(refundable: Money)
    }

    /// The booking whose saga decided (nil: the input named no booking we know).
    public var bookingID: BookingID?
    /// The saga's moves, in order (a refundable cancellation makes two).
    public var transitions: [Transition] = []
    /// The payment intent to show on the booking (its reference and client secret).
    public var paymentIntent: (providerRef: String, clientSecret: String)?
    /// Steps logged without a move.
    public var steps: [SagaStep] = []
    /// The events to append to the outbox, in order.
    public var events: [any DomainEvent] = []
    /// A refund the saga asks for (its `refund.requested` is among ``events``).
    public var refundRequest: RefundRequest?
    /// A refund request the provider's report completes.
    public var refundCompletion: RefundCompletion?
    /// A `review` dead letter with this error, for an operator.
    public var review: String?
    public var verdict: Verdict = .applied

    public init(bookingID: BookingID?) {
        self.bookingID = bookingID
    }

    /// Whether applying it writes nothing.
    public var isEmpty: Bool {
        transitions.isEmpty && paymentIntent == nil && steps.isEmpty && events.isEmpty && refundRequest == nil && refundCompletion == nil
            && review == nil
    }

    /// The saga's state once the decision is applied (nil when it moves nothing).
    public var finalState: SagaState? { transitions.last?.to }

    /// Whether the booking's seats are released.
    public var releasesSeats: Bool { transitions.contains(where: \.releasesSeats) }
}

/// Data the decider found inconsistent (e.g. a booking awaiting payment without seats). A fault to
/// retry and dead-letter, never a decision.
public struct SagaInconsistency: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
