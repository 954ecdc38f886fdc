import Foundation
import SharedModel
import Testing

@testable import Booking

/// The saga's input-pair matrix (``SagaMatrixTests``' expectations) against the pure ``SagaDecider``,
/// without a database: each booking lives in memory and each decision is applied to it the way
/// ``SagaRepository`` applies it in Postgres. The same tables run end to end in ``SagaMatrixTests``.
@Suite("Saga decider: every pair of inputs, in both orders, duplicated, in memory")
struct SagaDeciderMatrixTests {
    @Test("from awaiting_payment: 42 ordered pairs, decided in memory")
    func paymentPhase() throws {
        for (index, expectation) in SagaMatrixTests.payment.enumerated() {
            var world = try InMemorySaga(index: index)
            let inputs = try InMemoryInputs(world: world, index: index, refundID: nil)
            for input in [expectation.first, expectation.second, expectation.first, expectation.second] {
                try world.deliver(input, inputs)
            }
            world.check(expectation)
        }
    }

    @Test("from refund_pending: 20 ordered pairs, decided in memory")
    func refundPhase() throws {
        for (index, expectation) in SagaMatrixTests.refund.enumerated() {
            var world = try InMemorySaga(index: index)
            let setup = try InMemoryInputs(world: world, index: index, refundID: nil)
            try world.deliver(.paid, setup)
            try world.deliver(.cancel, setup)
            let refund = try #require(world.requests.first { $0.purpose == .cancellation }, "\(expectation): no cancellation refund")
            let inputs = try InMemoryInputs(world: world, index: index, refundID: refund.refundID)
            for input in [expectation.first, expectation.second, expectation.first, expectation.second] {
                try world.deliver(input, inputs)
            }
            world.check(expectation)
        }
    }

    @Test("the decider is pure: the same snapshot and input give the same decision, and nothing else changes")
    func pure() throws {
        let world = try InMemorySaga(index: 0)
        let inputs = try InMemoryInputs(world: world, index: 0, refundID: nil)
        let decider = SagaDecider()
        let id = RefundID()
        let first = try decider.decide(.paymentSucceeded(inputs.secondPayment), saga: world.saga, now: world.createdAt, newRefundID: id)
        let second = try decider.decide(.paymentSucceeded(inputs.secondPayment), saga: world.saga, now: world.createdAt, newRefundID: id)
        #expect(first.transitions == second.transitions && first.steps == second.steps && first.review == second.review)
        #expect(first.refundRequest == second.refundRequest && first.events.count == second.events.count)
        #expect(first.transitions.map(\.to) == [.confirmed] && first.events.first is BookingConfirmed)
    }
}

/// One booking's inputs, each made once so that its second delivery is a true duplicate.
struct InMemoryInputs {
    let paid: (UUID, PaymentSucceeded)
    let intent: (UUID, PaymentIntentCreated)
    let failed: (UUID, PaymentFailed)
    let refunded: (UUID, RefundSucceeded)
    let refundFailed: (UUID, RefundFailed)
    let secondPaymentEvent: (UUID, PaymentSucceeded)
    var secondPayment: PaymentSucceeded { secondPaymentEvent.1 }

    init(world: InMemorySaga, index: Int, refundID: RefundID?) throws {
        let booking = world.saga
        let reference = "pi_matrix_\(index)"
        func payment(_ reference: String, _ event: String) throws -> PaymentSucceeded {
            PaymentSucceeded(
                paymentEventID: try PaymentEventID(event), provider: "stripe", providerRef: reference, bookingID: booking.bookingID,
                amount: booking.amount, providerCreatedAt: world.createdAt, receivedAt: world.createdAt)
        }
        paid = try world.paidEvent ?? (UUID(), payment(reference, "evt_matrix_\(index)"))
        intent = (
            UUID(), PaymentIntentCreated(bookingID: booking.bookingID, provider: "stripe", providerRef: reference, clientSecret: "secret_\(index)")
        )
        failed = (
            UUID(),
            PaymentFailed(
                paymentEventID: try PaymentEventID("evt_matrix_failed_\(index)"), provider: "stripe", providerRef: reference,
                bookingID: booking.bookingID, amount: booking.amount, providerCreatedAt: world.createdAt, receivedAt: world.createdAt,
                reason: "card_declined", isFinal: true)
        )
        refunded = (UUID(), RefundSucceeded(refundID: refundID, bookingID: booking.bookingID, providerRef: reference, amount: booking.amount))
        refundFailed = (
            UUID(),
            RefundFailed(
                refundID: refundID ?? RefundID(), bookingID: booking.bookingID, providerRef: reference, amount: booking.amount, error: "refused")
        )
        secondPaymentEvent = (UUID(), try payment("\(reference)_second", "evt_matrix_second_\(index)"))
    }
}

/// A booking, its saga and what was written about it, in memory: decisions applied as
/// ``SagaRepository`` applies them in Postgres, events deduplicated by id as the consumer's inbox
/// does, the deadline acting only on a saga due as the poller's query selects it.
struct InMemorySaga {
    static let paymentWindow: TimeInterval = 15 * 60
    static let grace: TimeInterval = 120

    let createdAt = Date()
    private(set) var saga: SagaSnapshot
    private(set) var deadline: Date?
    private(set) var requests: [SagaRefundRequest] = []
    private(set) var processed: Set<UUID> = []
    private(set) var outbox: [String: Int] = [:]
    private(set) var refundKeys: Set<String> = []
    private(set) var reviews = 0
    private(set) var status = BookingStatus.pendingPayment
    /// The payment that confirmed it, kept so the refund phase delivers the same event again.
    private(set) var paidEvent: (UUID, PaymentSucceeded)?
    let decider = SagaDecider()

    init(index: Int) throws {
        let dueAt = createdAt.addingTimeInterval(Self.paymentWindow)
        saga = SagaSnapshot(
            bookingID: BookingID(), state: .awaitingPayment, version: 1, amount: Money(amount: 4_200, currency: .eur), paymentDueAt: dueAt,
            providerRef: nil, eventID: EventID(), holdID: HoldID(), customerID: try CustomerID("cus_\(index)"),
            hostID: try HostID("host_1"), confirmedAt: nil, attempts: 0, eventStartsAt: createdAt.addingTimeInterval(30 * 86_400),
            eventEndsAt: createdAt.addingTimeInterval(30 * 86_400 + 7_200), seats: [try SeatID("S\(index + 1)")], clientID: "test")
        deadline = dueAt.addingTimeInterval(Self.grace)
    }

    mutating func deliver(_ input: SagaMatrixTests.Input, _ inputs: InMemoryInputs) throws {
        switch input {
        case .intent: try consume(inputs.intent.0, .paymentIntentCreated(inputs.intent.1))
        case .paid:
            try consume(inputs.paid.0, .paymentSucceeded(inputs.paid.1))
            paidEvent = inputs.paid
        case .failed: try consume(inputs.failed.0, .paymentFailed(inputs.failed.1))
        case .refunded: try consume(inputs.refunded.0, .refundSucceeded(inputs.refunded.1))
        case .refundFailed: try consume(inputs.refundFailed.0, .refundFailed(inputs.refundFailed.1))
        case .secondPayment: try consume(inputs.secondPaymentEvent.0, .paymentSucceeded(inputs.secondPaymentEvent.1))
        case .cancel: try decide(.cancellation(.admin), at: Date())
        case .deadline: try poll(at: saga.paymentDueAt.addingTimeInterval(Self.grace + 1))
        case .overdue: try poll(at: Date().addingTimeInterval(2 * 3600))
        }
    }

    /// An event, once (its inbox row).
    private mutating func consume(_ id: UUID, _ input: SagaInput) throws {
        guard processed.insert(id).inserted else { return }
        try decide(input, at: Date())
    }

    /// The deadline poller at `instant`: only a saga whose deadline passed, in a state it acts on.
    private mutating func poll(at instant: Date) throws {
        guard let deadline, deadline <= instant, [.awaitingPayment, .cancelRequested, .refundPending].contains(saga.state) else { return }
        try decide(.deadlinePassed, at: instant)
    }

    private mutating func decide(_ input: SagaInput, at now: Date) throws {
        let candidates = input.refundReport.map { report in
            requests.filter {
                $0.refundID == report.refundID
                    || ($0.providerRef == report.providerRef && $0.amount == report.amount && $0.status == .requested)
            }
        }
        let decision = try decider.decide(input, saga: saga, refundRequests: candidates ?? [], now: now, newRefundID: RefundID())
        apply(decision, at: now)
    }

    private mutating func apply(_ decision: SagaDecision, at now: Date) {
        for transition in decision.transitions {
            precondition(transition.fromVersion == saga.version, "a decision made from another version")
            saga.state = transition.to
            saga.version += 1
            status = transition.bookingStatus
            deadline = transition.deadline
            saga.attempts += transition.countsAttempt ? 1 : 0
            if let reference = transition.paymentReference { saga.providerRef = reference }
            if transition.milestones.contains(.confirmed) { saga.confirmedAt = now }
            if transition.releasesSeats { saga.seats = [] }
        }
        if let intent = decision.paymentIntent, saga.providerRef == nil { saga.providerRef = intent.providerRef }
        if let request = decision.refundRequest {
            let event = request.event
            requests.append(
                SagaRefundRequest(
                    refundID: event.refundID, bookingID: event.bookingID, purpose: request.purpose, providerRef: event.providerRef,
                    amount: event.amount, status: .requested, requestedAt: now, isCurrent: false))
            refundKeys.insert(event.idempotencyKey)
        }
        if let completion = decision.refundCompletion, let index = requests.firstIndex(where: { $0.refundID == completion.refundID }) {
            let request = requests[index]
            requests[index] = SagaRefundRequest(
                refundID: request.refundID, bookingID: request.bookingID, purpose: request.purpose, providerRef: request.providerRef,
                amount: request.amount, status: completion.status, requestedAt: request.requestedAt, isCurrent: false)
        }
        // The newest cancellation refund of the booking is the one the saga waits for.
        let current = requests.filter { $0.purpose == .cancellation }.max {
            ($0.requestedAt, $0.refundID.description) < ($1.requestedAt, $1.refundID.description)
        }
        requests = requests.map { request in
            SagaRefundRequest(
                refundID: request.refundID, bookingID: request.bookingID, purpose: request.purpose, providerRef: request.providerRef,
                amount: request.amount, status: request.status, requestedAt: request.requestedAt, isCurrent: request.refundID == current?.refundID)
        }
        for event in decision.events { outbox[type(of: event).eventType, default: 0] += 1 }
        if decision.review != nil { reviews += 1 }
    }

    func check(_ expected: SagaMatrixTests.Expectation) {
        #expect(saga.state == expected.state, "\(expected): state")
        #expect(status == expected.state.bookingStatus ?? .refundPending, "\(expected): booking status")
        #expect(outbox["booking.confirmed", default: 0] == expected.confirmed, "\(expected): booking.confirmed")
        #expect(outbox["booking.cancelled", default: 0] == expected.cancelled, "\(expected): booking.cancelled")
        #expect(outbox["booking.expired", default: 0] == expected.expired, "\(expected): booking.expired")
        #expect(outbox["refund.requested", default: 0] == expected.refunds, "\(expected): refund.requested")
        #expect(refundKeys.count == expected.refunds, "\(expected): one idempotency key per refund")
        #expect(reviews == expected.reviews, "\(expected): review dead letters")
        #expect(saga.seats.isEmpty != expected.seatsHeld, "\(expected): seats held")
    }
}
