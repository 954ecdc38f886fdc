import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@testable import Booking

/// Every ordered pair of the saga's inputs, each delivered twice (the second time as a redelivery of
/// the same envelope, a repeated cancel call, a second poller run), interleaved: `a, b, a, b`. The
/// final state must be DESIGN.md's, and each side effect (the booking events, refund requests,
/// `review` dead letters, released seats) must have happened exactly once.
///
/// The expectations are written out per pair below, derived by hand from DESIGN.md's saga table:
/// a payment confirms only a booking awaiting payment and is otherwise refunded with a review; a
/// failure, a cancellation or the deadline ends only a booking awaiting payment (a confirmed one is
/// cancelled with a full refund more than 24 h before the event); refund outcomes move only a
/// refund in progress, and are reviewed when nobody asked for them.
@Suite("Saga: every pair of inputs, in both orders, duplicated")
struct SagaMatrixTests {
    enum Input: String, Sendable, CustomStringConvertible {
        case intent, paid, failed, cancel, deadline, refunded, refundFailed
        /// The refund's bound passed (the deadline poller, two hours on).
        case overdue
        /// Another payment (a different payment intent) for the booking.
        case secondPayment
        var description: String { rawValue }
    }

    struct Expectation: Sendable, CustomStringConvertible {
        let first: Input
        let second: Input
        let state: SagaState
        let confirmed: Int
        let cancelled: Int
        let expired: Int
        let refunds: Int
        let reviews: Int
        let seatsHeld: Bool

        init(
            _ first: Input, _ second: Input, _ state: SagaState, confirmed: Int, cancelled: Int, expired: Int, refunds: Int, reviews: Int,
            seatsHeld: Bool
        ) {
            (self.first, self.second, self.state, self.confirmed, self.cancelled) = (first, second, state, confirmed, cancelled)
            (self.expired, self.refunds, self.reviews, self.seatsHeld) = (expired, refunds, reviews, seatsHeld)
        }

        var description: String { "\(first), \(second), \(first), \(second)" }
    }

    /// From a booking awaiting payment.
    static let payment: [Expectation] = [
        Expectation(.intent, .paid, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 0, seatsHeld: true),
        Expectation(.intent, .failed, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.intent, .cancel, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.intent, .deadline, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.intent, .refunded, .awaitingPayment, confirmed: 0, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.intent, .refundFailed, .awaitingPayment, confirmed: 0, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.paid, .intent, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 0, seatsHeld: true),
        Expectation(.paid, .failed, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 0, seatsHeld: true),
        Expectation(.paid, .cancel, .refundPending, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.paid, .deadline, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 0, seatsHeld: true),
        Expectation(.paid, .refunded, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.paid, .refundFailed, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.failed, .intent, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.failed, .paid, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 1, reviews: 1, seatsHeld: false),
        Expectation(.failed, .cancel, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.failed, .deadline, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.failed, .refunded, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.failed, .refundFailed, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.cancel, .intent, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.cancel, .paid, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 1, reviews: 1, seatsHeld: false),
        Expectation(.cancel, .failed, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.cancel, .deadline, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.cancel, .refunded, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.cancel, .refundFailed, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.deadline, .intent, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.deadline, .paid, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 1, reviews: 1, seatsHeld: false),
        Expectation(.deadline, .failed, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.deadline, .cancel, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 0, seatsHeld: false),
        Expectation(.deadline, .refunded, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.deadline, .refundFailed, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refunded, .intent, .awaitingPayment, confirmed: 0, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.refunded, .paid, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.refunded, .failed, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refunded, .cancel, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refunded, .deadline, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refunded, .refundFailed, .awaitingPayment, confirmed: 0, cancelled: 0, expired: 0, refunds: 0, reviews: 2, seatsHeld: true),
        Expectation(.refundFailed, .intent, .awaitingPayment, confirmed: 0, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.refundFailed, .paid, .confirmed, confirmed: 1, cancelled: 0, expired: 0, refunds: 0, reviews: 1, seatsHeld: true),
        Expectation(.refundFailed, .failed, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refundFailed, .cancel, .cancelled, confirmed: 0, cancelled: 1, expired: 0, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refundFailed, .deadline, .expired, confirmed: 0, cancelled: 0, expired: 1, refunds: 0, reviews: 1, seatsHeld: false),
        Expectation(.refundFailed, .refunded, .awaitingPayment, confirmed: 0, cancelled: 0, expired: 0, refunds: 0, reviews: 2, seatsHeld: true),
    ]

    /// From a confirmed booking cancelled with its refund requested (`refund_pending`).
    static let refund: [Expectation] = [
        Expectation(.refunded, .refundFailed, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 1, seatsHeld: false),
        Expectation(.refunded, .overdue, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.refunded, .cancel, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.refunded, .secondPayment, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(.refundFailed, .refunded, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.refundFailed, .overdue, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.refundFailed, .cancel, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(
            .refundFailed, .secondPayment, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(.overdue, .refunded, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.overdue, .refundFailed, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 1, seatsHeld: false),
        Expectation(.overdue, .cancel, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.overdue, .secondPayment, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(.cancel, .refunded, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.cancel, .refundFailed, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.cancel, .overdue, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 1, reviews: 0, seatsHeld: false),
        Expectation(.cancel, .secondPayment, .refundPending, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(.secondPayment, .refunded, .refunded, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(
            .secondPayment, .refundFailed, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(.secondPayment, .overdue, .compensationFailed, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
        Expectation(.secondPayment, .cancel, .refundPending, confirmed: 1, cancelled: 1, expired: 0, refunds: 2, reviews: 1, seatsHeld: false),
    ]

    @Test("from awaiting_payment: 42 ordered pairs of payment intent, payment, failure, cancellation, deadline, refund outcomes")
    func paymentPhase() async throws {
        #expect(Self.payment.count == 42)
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: Self.payment.count)
            for (index, expectation) in Self.payment.enumerated() {
                let booking = try await client.booked(event, ["S\(index + 1)"], customer: "cus_\(index)")
                let inputs = try MatrixInputs(booking: booking, index: index, refundID: nil)
                for input in [expectation.first, expectation.second, expectation.first, expectation.second] {
                    try await inputs.deliver(input, client: client, world: world)
                }
                try await inputs.check(expectation, world: world)
            }
        }
    }

    @Test("from refund_pending: 20 ordered pairs of refund succeeded, refund failed, refund overdue, cancellation, a second payment")
    func refundPhase() async throws {
        #expect(Self.refund.count == 20)
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: Self.refund.count)
            for (index, expectation) in Self.refund.enumerated() {
                let booking = try await client.booked(event, ["S\(index + 1)"], customer: "cus_\(index)")
                var inputs = try MatrixInputs(booking: booking, index: index, refundID: nil)
                try await inputs.deliver(.paid, client: client, world: world)
                try await inputs.deliver(.cancel, client: client, world: world)
                let requested = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
                let refund = try #require(requested.first { $0.bookingID == booking.id }, "\(expectation): no cancellation refund")
                inputs = try MatrixInputs(booking: booking, index: index, refundID: refund.refundID, paid: inputs.paid)
                for input in [expectation.first, expectation.second, expectation.first, expectation.second] {
                    try await inputs.deliver(input, client: client, world: world)
                }
                try await inputs.check(expectation, world: world)
            }
        }
    }
}

/// One booking's inputs, each made once so that its second delivery is a true duplicate.
struct MatrixInputs: Sendable {
    let booking: Booked
    let reference: String
    let paid: EventEnvelope
    let intent: EventEnvelope
    let failed: EventEnvelope
    let refunded: EventEnvelope
    let refundFailed: EventEnvelope
    let secondPayment: EventEnvelope

    init(booking: Booked, index: Int, refundID: RefundID?, paid given: EventEnvelope? = nil) throws {
        self.booking = booking
        reference = "pi_matrix_\(index)"
        func envelope(_ event: some DomainEvent) throws -> EventEnvelope {
            try EventEnvelope(
                event: event, occurredAt: Date(), sequence: 1, correlationID: "matrix-\(index)", causationID: nil, producer: .paymentsWebhook)
        }
        paid = try given ?? envelope(try BookingTests.paid(booking, reference: reference, event: "evt_matrix_\(index)"))
        intent = try envelope(
            PaymentIntentCreated(bookingID: booking.id, provider: "stripe", providerRef: reference, clientSecret: "secret_\(index)"))
        failed = try envelope(
            PaymentFailed(
                paymentEventID: try PaymentEventID(parsing: "evt_matrix_failed_\(index)"), provider: "stripe", providerRef: reference,
                bookingID: booking.id, amount: booking.amount, providerCreatedAt: Date(), receivedAt: Date(), reason: "card_declined", isFinal: true))
        refunded = try envelope(RefundSucceeded(refundID: refundID, bookingID: booking.id, providerRef: reference, amount: booking.amount))
        refundFailed = try envelope(
            RefundFailed(refundID: refundID ?? RefundID(), bookingID: booking.id, providerRef: reference, amount: booking.amount, error: "refused"))
        secondPayment = try envelope(
            try BookingTests.paid(booking, reference: "\(reference)_second", event: "evt_matrix_second_\(index)"))
    }

    func deliver(_ input: SagaMatrixTests.Input, client: some TestClientProtocol, world: SagaWorld) async throws {
        let poller = { (instant: Date) in
            SagaDeadlinePoller(postgres: world.postgres, holds: SeatHoldStore(redis: world.redis), logger: TestEnvironment.logger, now: { instant })
        }
        switch input {
        case .intent: try await publish(intent, world)
        case .paid: try await publish(paid, world)
        case .failed: try await publish(failed, world)
        case .refunded: try await publish(refunded, world)
        case .refundFailed: try await publish(refundFailed, world)
        case .secondPayment: try await publish(secondPayment, world)
        case .cancel:
            let answer = try await client.call(.post, "/v1/bookings/\(booking.id)/cancel", as: .admin, json: ["customer_id": "cus_any"])
            #expect([.ok, .conflict].contains(answer.status), "cancel answered \(answer.status)")
        case .deadline: try await poller(booking.dueAt.addingTimeInterval(SagaDeadlineTests.grace + 1)).expireDue()
        case .overdue: try await poller(Date().addingTimeInterval(2 * 3600)).expireDue()
        }
    }

    /// Publishes `envelope`; the first time, waits until the saga has processed it.
    private func publish(_ envelope: EventEnvelope, _ world: SagaWorld) async throws {
        let seen = try await world.postgres.count("SELECT count(*) FROM messaging.inbox WHERE event_id = \(envelope.id.uuid)")
        try await world.redeliver(envelope)
        if seen == 0 { try await world.waitUntil("SELECT count(*) FROM messaging.inbox WHERE event_id = \(envelope.id.uuid)", equals: 1) }
    }

    func check(_ expected: SagaMatrixTests.Expectation, world: SagaWorld) async throws {
        try await world.settle()
        let id = booking.id.description
        let saga = try await world.postgres.query(
            "SELECT s.state, b.status FROM booking.sagas s JOIN booking.bookings b USING (booking_id) WHERE booking_id = \(booking.id.uuid)")
        let state = try saga.first?.decode(String.self, at: 0)
        let status = try saga.first?.decode(String.self, at: 1)
        #expect(state == expected.state.rawValue, "\(expected): state")
        #expect(status == (expected.state.bookingStatus ?? .refundPending).rawValue, "\(expected): booking status")
        func events(_ type: String) async throws -> Int {
            try await world.postgres.count("SELECT count(*) FROM messaging.outbox WHERE aggregate_id = \(id) AND event_type = \(type)")
        }
        #expect(try await events("booking.confirmed") == expected.confirmed, "\(expected): booking.confirmed")
        #expect(try await events("booking.cancelled") == expected.cancelled, "\(expected): booking.cancelled")
        #expect(try await events("booking.expired") == expected.expired, "\(expected): booking.expired")
        #expect(try await events("refund.requested") == expected.refunds, "\(expected): refund.requested")
        let keys = try await world.postgres.count(
            "SELECT count(DISTINCT envelope->'data'->>'idempotency_key') FROM messaging.outbox WHERE aggregate_id = \(id) AND event_type = 'refund.requested'"
        )
        #expect(keys == expected.refunds, "\(expected): one idempotency key per refund")
        let reviews = try await world.postgres.count(
            "SELECT count(*) FROM messaging.dead_letters WHERE aggregate_id = \(id) AND kind = 'review'")
        #expect(reviews == expected.reviews, "\(expected): review dead letters")
        #expect(try await world.postgres.count("SELECT count(*) FROM messaging.dead_letters WHERE aggregate_id = \(id) AND kind = 'failure'") == 0)
        let held = try await world.postgres.count(
            "SELECT count(*) FROM booking.booking_seats WHERE booking_id = \(booking.id.uuid) AND released_at IS NULL")
        #expect(held == (expected.seatsHeld ? 1 : 0), "\(expected): seats held")
    }
}
