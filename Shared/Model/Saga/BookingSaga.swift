import Foundation

/// A booking saga's state machine as a value: its ``state`` and the booking ``bookingStatus`` it
/// implies, moved only along DESIGN.md's saga table (``SagaState/allowedNextStates``).
///
/// Guarantees: ``transition(to:)`` either performs an allowed transition or throws
/// ``IllegalTransition`` leaving the value untouched - never a silent no-op. The booking status
/// follows the state, except that `compensation_failed` keeps the status it found.
public struct BookingSaga: Hashable, Sendable {
    /// One performed transition, for the saga's step log.
    public struct Transition: Hashable, Sendable {
        /// The state before.
        public let from: SagaState
        /// The state after.
        public let to: SagaState

        /// Records a transition from `from` to `to`.
        public init(from: SagaState, to: SagaState) {
            self.from = from
            self.to = to
        }
    }

    /// The current saga state.
    public private(set) var state: SagaState
    /// The booking status to store beside the state.
    public private(set) var bookingStatus: BookingStatus

    /// A saga in `state` (default: a new saga, `awaiting_payment`), e.g. as loaded from storage.
    /// Its booking status is the one `state` implies; for `compensation_failed` that is
    /// `refund_pending`, the status of every state from which compensation can fail.
    public init(state: SagaState = .awaitingPayment) {
        self.state = state
        self.bookingStatus = state.bookingStatus ?? .refundPending
    }

    /// The states ``SagaState/allowedNextStates`` lists for `state`.
    public static func allowedTransitions(from state: SagaState) -> Set<SagaState> {
        state.allowedNextStates
    }

    /// Whether the saga table allows `from` -> `to`.
    public static func canTransition(from: SagaState, to: SagaState) -> Bool {
        from.canTransition(to: to)
    }

    /// Whether the saga can no longer move (`refunded`, `cancelled`, `expired`).
    public var isTerminal: Bool { state.isTerminal }

    /// Moves to `next` if the table allows it, updating ``bookingStatus``; otherwise throws
    /// ``IllegalTransition`` and changes nothing.
    @discardableResult
    public mutating func transition(to next: SagaState) throws(IllegalTransition) -> Transition {
        guard state.canTransition(to: next) else { throw IllegalTransition(from: state, to: next) }
        let performed = Transition(from: state, to: next)
        state = next
        bookingStatus = next.bookingStatus ?? bookingStatus
        return performed
    }

    /// A copy moved to `next`, or ``IllegalTransition``.
    public func transitioned(to next: SagaState) throws(IllegalTransition) -> BookingSaga {
        var copy = self
        try copy.transition(to: next)
        return copy
    }
}
