import Foundation
import SharedModel
import Testing

/// DESIGN.md's saga table, written out literally (not derived from the implementation), plus
/// the documented `saga resume` moves out of `compensation_failed`.
private let allowedPairs: Set<String> = [
    "awaiting_payment -> confirmed",
    "awaiting_payment -> cancelled",
    "awaiting_payment -> expired",
    "confirmed -> cancel_requested",
    "confirmed -> cancelled",
    "cancel_requested -> refund_pending",
    "cancel_requested -> refunded",
    "cancel_requested -> compensation_failed",
    "refund_pending -> refunded",
    "refund_pending -> compensation_failed",
    "compensation_failed -> refund_pending",
    "compensation_failed -> refunded",
]

@Suite("Saga state machine")
struct SagaTransitionTests {
    @Test("the saga has exactly the eight states of DESIGN.md")
    func stateList() {
        #expect(
            SagaState.allCases.map(\.rawValue) == [
                "awaiting_payment", "confirmed", "cancel_requested", "refund_pending",
                "refunded", "cancelled", "expired", "compensation_failed",
            ])
    }

    @Test(
        "every (from, to) pair: allowed ones succeed, all others throw IllegalTransition",
        arguments: SagaState.allCases, SagaState.allCases)
    func everyPair(from: SagaState, to: SagaState) throws {
        let expectedAllowed = allowedPairs.contains("\(from.rawValue) -> \(to.rawValue)")
        #expect(BookingSaga.canTransition(from: from, to: to) == expectedAllowed)
        #expect(BookingSaga.allowedTransitions(from: from).contains(to) == expectedAllowed)

        var saga = BookingSaga(state: from)
        if expectedAllowed {
            let performed = try saga.transition(to: to)
            #expect(performed == BookingSaga.Transition(from: from, to: to))
            #expect(saga.state == to)
        } else {
            let before = saga
            #expect(throws: IllegalTransition(from: from, to: to)) {
                try saga.transition(to: to)
            }
            #expect(saga == before, "a refused transition must not change the saga")
        }
    }

    @Test("the allowed set is exactly the literal table (no extra pairs)")
    func allowedSetMatchesTable() {
        var actual: Set<String> = []
        for from in SagaState.allCases {
            for to in from.allowedNextStates {
                actual.insert("\(from.rawValue) -> \(to.rawValue)")
            }
        }
        #expect(actual == allowedPairs)
    }

    @Test("refunded, cancelled and expired are terminal; nothing else is")
    func terminalStates() {
        let terminal = SagaState.allCases.filter(\.isTerminal).map(\.rawValue)
        #expect(Set(terminal) == ["refunded", "cancelled", "expired"])
        for state in SagaState.allCases where state.isTerminal {
            #expect(state.allowedNextStates.isEmpty)
        }
    }

    @Test("each saga state implies the booking status of DESIGN.md's table")
    func impliedBookingStatus() {
        let expected: [String: String?] = [
            "awaiting_payment": "pending_payment",
            "confirmed": "confirmed",
            "cancel_requested": "refund_pending",
            "refund_pending": "refund_pending",
            "refunded": "refunded",
            "cancelled": "cancelled",
            "expired": "expired",
            "compensation_failed": nil,
        ]
        for state in SagaState.allCases {
            #expect(state.bookingStatus?.rawValue == expected[state.rawValue] ?? "missing")
        }
    }

    @Test("a refund that fails and is resumed walks the statuses; compensation_failed keeps the status")
    func compensationPath() throws {
        var saga = BookingSaga()
        #expect(saga.state == .awaitingPayment)
        #expect(saga.bookingStatus == .pendingPayment)
        try saga.transition(to: .confirmed)
        #expect(saga.bookingStatus == .confirmed)
        try saga.transition(to: .cancelRequested)
        #expect(saga.bookingStatus == .refundPending)
        try saga.transition(to: .refundPending)
        try saga.transition(to: .compensationFailed)
        #expect(saga.state == .compensationFailed)
        #expect(saga.bookingStatus == .refundPending)
        try saga.transition(to: .refundPending)
        try saga.transition(to: .refunded)
        #expect(saga.bookingStatus == .refunded)
        #expect(saga.isTerminal)
        #expect(throws: IllegalTransition(from: .refunded, to: .refundPending)) {
            try saga.transition(to: .refundPending)
        }
    }

    @Test("a saga loaded in compensation_failed reports the refund_pending booking status")
    func loadedCompensationFailed() {
        #expect(BookingSaga(state: .compensationFailed).bookingStatus == .refundPending)
    }

    @Test("transitioned(to:) returns a moved copy and leaves the original alone")
    func transitionedCopy() throws {
        let saga = BookingSaga()
        let expired = try saga.transitioned(to: .expired)
        #expect(saga.state == .awaitingPayment)
        #expect(expired.state == .expired)
        #expect(expired.bookingStatus == .expired)
        #expect(throws: IllegalTransition(from: .expired, to: .confirmed)) {
            try expired.transitioned(to: .confirmed)
        }
    }

    @Test("saga states and booking statuses encode as their snake_case strings")
    func codable() throws {
        let data = try JSONEncoder.platform.encode([SagaState.compensationFailed.rawValue: BookingStatus.pendingPayment])
        #expect(String(decoding: data, as: UTF8.self) == #"{"compensation_failed":"pending_payment"}"#)
        #expect(try JSONDecoder.platform.decode(SagaState.self, from: Data(#""cancel_requested""#.utf8)) == .cancelRequested)
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(SagaState.self, from: Data(#""cancelRequested""#.utf8))
        }
        #expect(
            BookingStatus.allCases.map(\.rawValue) == [
                "pending_payment", "confirmed", "refund_pending", "refunded", "cancelled", "expired",
            ])
    }
}
