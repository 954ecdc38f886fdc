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

/// What the payments stream says about one booking in the 1,000-booking scenario.
enum SagaPaymentScript: String, CaseIterable, Sendable {
    case paid = "paid"
    case failed = "payment failed"
    case failedThenPaid = "payment failed, then paid late"
    case unpaid = "never paid"
    case paidAndFailed = "paid and failed, in random order"
    case paidAtDeadline = "paid before its due time, delivered as the deadline passes"
}

/// One booking of the scenario: what is published for it, in which phase, and what it may end as.
struct SagaCase: Sendable {
    /// A final state the booking may reach, whether the payment is then refunded, and the step log
    /// (`step:outcome`, sorted, without the optional `payment_intent_created`).
    struct Outcome: Sendable {
        let state: String
        let refunded: Bool
        let steps: [String]
    }

    let booking: Booked
    let seat: String
    let script: SagaPaymentScript
    /// One envelope of the booking is published twice.
    let duplicated: Bool
    /// The successful payment is reported again by a second source (another event id, same intent).
    let secondSource: Bool
    /// A `payment.intent_created` is published too.
    let intent: Bool
    let reference: String
    /// Published first, all bookings' groups shuffled together (a group's envelopes stay adjacent, so
    /// that the two instances often handle them at the same time); published once the first are
    /// handled; published as the clock passes every deadline.
    var first: [[EventEnvelope]] = []
    var late: [EventEnvelope] = []
    var atDeadline: [EventEnvelope] = []
    /// The success that is refunded when the booking does not confirm, and its envelope.
    var success: PaymentSucceeded?
    var successEnvelope: EventEnvelope?

    init(index: Int, booking: Booked, seat: String) throws {
        self.booking = booking
        self.seat = seat
        script = SagaPaymentScript.allCases[index % SagaPaymentScript.allCases.count]
        duplicated = script != .unpaid && Bool.random()
        secondSource = script == .paid && Bool.random()
        intent = [.paid, .failed, .paidAndFailed].contains(script) && Bool.random()
        reference = "pi_\(index)"
        let intentCreated = try SagaFeed.envelope(
            PaymentIntentCreated(bookingID: booking.id, provider: "stripe", providerRef: reference, clientSecret: "\(reference)_secret"))
        let failure = try SagaFeed.envelope(
            PaymentFailed(
                paymentEventID: try PaymentEventID(parsing: "evt_failed_\(index)"), provider: "stripe", providerRef: reference, bookingID: booking.id,
                amount: booking.amount, providerCreatedAt: Date(), receivedAt: Date(), reason: "card_declined", isFinal: true))
        let madeAt = script == .paidAtDeadline ? booking.dueAt.addingTimeInterval(-1) : Date()
        let success = try paid(booking, reference: reference, event: "evt_paid_\(index)", at: madeAt)
        let paidEnvelope = try SagaFeed.envelope(success)
        self.success = success
        successEnvelope = paidEnvelope
        let payment = duplicated ? [paidEnvelope, paidEnvelope] : [paidEnvelope]
        if intent { first.append([intentCreated]) }
        switch script {
        case .paid:
            let again = try SagaFeed.envelope(try paid(booking, reference: reference, event: "pe_internal_\(index)"))
            first.append(payment + (secondSource ? [again] : []))
        case .failed: first.append(duplicated ? [failure, failure] : [failure])
        case .failedThenPaid:
            first.append([failure])
            late = payment
        case .unpaid: break
        case .paidAndFailed: first.append([paidEnvelope, failure].shuffled() + (duplicated ? [paidEnvelope] : []))
        case .paidAtDeadline: atDeadline = payment
        }
    }

    var name: String {
        let details = [duplicated ? "an envelope delivered twice" : nil, secondSource ? "reported by a second source" : nil, intent ? "intent" : nil]
        return "booking \(booking.id) on \(seat) (\(([script.rawValue] + details.compactMap { $0 }).joined(separator: ", ")))"
    }

    var outcomes: [Outcome] {
        let requested = "booking_requested:succeeded"
        let confirmed = "booking_confirmed:succeeded"
        let cancelled = "booking_cancelled:succeeded"
        let expired = "booking_expired:succeeded"
        let refund = "refund_requested:succeeded"
        switch script {
        case .paid:
            return [
                Outcome(state: "confirmed", refunded: false, steps: [requested, confirmed] + (secondSource ? ["payment_succeeded:skipped"] : []))
            ]
        case .failed: return [Outcome(state: "cancelled", refunded: false, steps: [requested, cancelled])]
        case .failedThenPaid: return [Outcome(state: "cancelled", refunded: true, steps: [requested, cancelled, refund])]
        case .unpaid: return [Outcome(state: "expired", refunded: false, steps: [requested, expired])]
        case .paidAndFailed:
            return [
                Outcome(state: "confirmed", refunded: false, steps: [requested, confirmed, "payment_failed:skipped"]),
                Outcome(state: "cancelled", refunded: true, steps: [requested, cancelled, refund]),
            ]
        case .paidAtDeadline:
            return [
                Outcome(state: "confirmed", refunded: false, steps: [requested, confirmed]),
                Outcome(state: "expired", refunded: true, steps: [requested, expired, refund]),
            ]
        }
    }
}

@Suite("Saga under concurrency: two coordinators and two deadline pollers, every booking ends once")
struct SagaConcurrencyTests {
    /// The default payment grace (`PAYMENT_GRACE`, 2 minutes).
    static let grace: TimeInterval = 120

    @Test("Two coordinator instances on the same streams with 1,000 bookings: every booking reaches exactly one terminal state")
    func twoCoordinators() async throws {
        let first = try await BookingHarness.make()
        let second = try await BookingHarness.make(databaseURL: first.databaseURL)
        let postgres = first.postgres
        let stream = "stream:payments-test-\(UUID().uuidString.prefix(8).lowercased())"
        let redis = try RedisClient.forTests(connections: 2)
        let feed = SagaFeed(postgres: postgres, redis: redis, stream: stream)
        let clock = SagaTestClock()
        let log = SagaLogRecorder()
        let parts = [first.parts, second.parts]
        do {
            try await first.run { client in
                let event = try await client.createEvent(seats: 1000)
                let booked = try await mapConcurrently(1000, limit: 16) { index in
                    try await client.booked(event, ["S\(index + 1)"], customer: "cus_\(index)")
                }
                #expect(Set(booked.map(\.id)).count == 1000)
                let cases = try booked.enumerated().map { index, booking in try SagaCase(index: index, booking: booking, seat: "S\(index + 1)") }
                let count = { (script: SagaPaymentScript) in cases.count { $0.script == script } }

                let instances = SagaInstances(parts, stream: stream, clock: clock, logger: log.logger)
                do {
                    // Payments, failures, intents and duplicates of all bookings, mixed; then the late payments.
                    try await feed.publish(cases.flatMap(\.first).shuffled().flatMap { $0 })
                    try await feed.waitUntilHandled()
                    try await feed.publish(cases.flatMap(\.late).shuffled())
                    try await feed.waitUntilHandled()
                    // The pollers ran all along: nothing was due yet.
                    #expect(try await postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'expired'") == 0)
                    #expect(
                        try await postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'awaiting_payment'")
                            == count(.unpaid) + count(.paidAtDeadline))

                    // Every deadline passes while the last on-time payments arrive.
                    let latest = try #require(booked.map(\.dueAt).max())
                    clock.set(latest.addingTimeInterval(Self.grace + 1))
                    try await feed.publish(cases.flatMap(\.atDeadline).shuffled())
                    try await feed.waitUntilHandled()
                    try await waitUntilNoneAwaiting(postgres)
                } catch {
                    await instances.stop()
                    throw error
                }
                await instances.stop()

                let snapshot = try await SagaTableSnapshot.read(postgres)
                let seatMap = try await settledSeatMap(client, event, cases: cases, snapshot: snapshot)
                verify(cases, snapshot: snapshot, seatMap: seatMap)
                verifyNoFailure(log.recorded, cases: cases)
            }
        } catch {
            await second.shutdown()
            await redis.shutdown()
            throw error
        }
        await second.shutdown()
        _ = try? await redis.send("DEL", RedisArgument(stream))
        await redis.shutdown()

        #expect(
            try await postgres.count(
                "SELECT count(*) FROM (SELECT 1 FROM booking.booking_seats WHERE released_at IS NULL GROUP BY event_id, seat_id HAVING count(*) > 1) AS doubled"
            ) == 0)
        #expect(try await postgres.count("SELECT count(*) FROM messaging.attempts") == 0, "no handler failure left an attempt count")
    }

    /// The coordinators and pollers never failed: a conflict between them is retried inside the saga
    /// (a version conflict), not reported as a handler failure that the consumer retries with backoff
    /// and counts towards a dead letter.
    private func verifyNoFailure(_ recorded: [SagaLogRecorder.Entry], cases: [SagaCase]) {
        var names: [UUID: String] = [:]
        for item in cases {
            for envelope in item.first.flatMap({ $0 }) + item.late + item.atDeadline {
                names[envelope.id.uuid] = "\(envelope.type) of \(item.name)"
            }
        }
        for entry in recorded {
            let event = entry.metadata["event_id"].flatMap(UUID.init(uuidString:)).flatMap { names[$0] } ?? "no known event"
            Issue.record("logged \(entry.level) \"\(entry.message)\" for \(event): \(entry.metadata.sorted { $0.key < $1.key })")
        }
    }

    /// Per booking: one final state that the booking's status, timestamps, outbox, step log, version,
    /// refunds, dead letters, seats and seat map all agree with.
    private func verify(_ cases: [SagaCase], snapshot: SagaTableSnapshot, seatMap: [String: String]) {
        #expect(snapshot.sagas.count == cases.count)
        let refunds = Dictionary(grouping: snapshot.refunds) { $0.bookingID }
        let reviews = Dictionary(grouping: snapshot.deadLetters.filter { $0.kind == "review" }) { $0.aggregateID }
        for item in cases {
            let id = item.booking.id
            let name = item.name
            guard let saga = snapshot.sagas[id] else {
                Issue.record("\(name): no saga")
                continue
            }
            guard let outcome = item.outcomes.first(where: { $0.state == saga.state }) else {
                Issue.record("\(name) ended \(saga.state), expected one of \(item.outcomes.map(\.state))")
                continue
            }
            #expect(saga.status == saga.state, "\(name): status \(saga.status), saga \(saga.state)")
            #expect(!saga.hasDeadline, "\(name): a final saga keeps a deadline")
            #expect(
                saga.confirmedAt == (saga.state == "confirmed") && saga.cancelledAt == (saga.state == "cancelled")
                    && saga.expiredAt == (saga.state == "expired"), "\(name): lifecycle timestamps \(saga)")

            // Exactly the one final event of its state, and none of the others.
            for (type, state) in [("booking.confirmed", "confirmed"), ("booking.cancelled", "cancelled"), ("booking.expired", "expired")] {
                let events = snapshot.outbox(id, type)
                #expect(events.count == (saga.state == state ? 1 : 0), "\(name) ended \(saga.state) with \(events.count) \(type)")
            }
            if saga.state == "confirmed", let confirmed = try? snapshot.outbox(id, "booking.confirmed").first?.decode(BookingConfirmed.self) {
                #expect(
                    confirmed.amount == item.booking.amount && confirmed.providerRef == item.reference
                        && confirmed.seatIDs.map(\.rawValue) == [item.seat],
                    "\(name): \(confirmed)")
            }
            if saga.state == "cancelled", let cancelled = try? snapshot.outbox(id, "booking.cancelled").first?.decode(BookingCancelled.self) {
                #expect(cancelled.reason == .paymentFailed && cancelled.refundDue.isZero, "\(name): \(cancelled)")
            }

            // The step log: the steps this outcome takes, one transition out of awaiting_payment, and a
            // version of 1 (the booking's creation) plus one per transition.
            let steps = snapshot.steps[id] ?? []
            let labels = steps.map(\.label).filter { $0 != "payment_intent_created:succeeded" }.sorted()
            #expect(labels == outcome.steps.sorted(), "\(name) ended \(saga.state) with steps \(steps.map(\.label))")
            #expect(steps.count { $0.step == "payment_intent_created" } <= (item.intent ? 1 : 0), "\(name): \(steps.map(\.label))")
            let transitions = steps.filter(\.isTransition)
            #expect(saga.version == 1 + Int64(transitions.count), "\(name): version \(saga.version), transitions \(transitions.count)")
            #expect(
                transitions.map { "\($0.from ?? "-")>\($0.to ?? "-")" } == ["awaiting_payment>\(saga.state)"],
                "\(name): transitions \(transitions.map { "\($0.from ?? "-")>\($0.to ?? "-")" })")

            // The payment that could not confirm it is refunded once, under its own key, and reviewed.
            let refunded = refunds[id] ?? []
            let reviewed = reviews[id.description] ?? []
            if outcome.refunded, let success = item.success, let envelope = item.successEnvelope {
                #expect(refunded.count == 1, "\(name) ended \(saga.state) with \(refunded.count) refunds")
                if let refund = refunded.first {
                    #expect(
                        refund.idempotencyKey == "refund-stripe-\(success.paymentEventID)" && refund.providerRef == item.reference
                            && refund.amount == item.booking.amount && refund.reason == .latePayment,
                        "\(name): \(refund)")
                }
                #expect(reviewed.map(\.eventID) == [envelope.id.uuid], "\(name): review dead letters \(reviewed)")
            } else {
                #expect(refunded.isEmpty, "\(name) ended \(saga.state) with refunds \(refunded)")
                #expect(reviewed.isEmpty, "\(name) ended \(saga.state) with review dead letters \(reviewed)")
            }

            // Its seat: kept (and sold) when confirmed, released otherwise.
            let sold = saga.state == "confirmed"
            #expect(snapshot.seats[id] == [item.seat: !sold], "\(name) ended \(saga.state); seat rows released: \(snapshot.seats[id] ?? [:])")
            #expect(
                seatMap[item.seat] == (sold ? "sold" : "available"),
                "\(name) ended \(saga.state); the seat map shows \(seatMap[item.seat] ?? "nothing")")
        }

        // Across bookings: refunds only for the scenario's bookings, never twice under one key, never for a
        // confirmed booking; a review dead letter for each; nothing failed.
        let keys = snapshot.refunds.map(\.idempotencyKey)
        #expect(Set(keys).count == keys.count, "refund keys repeat: \(Dictionary(grouping: keys) { $0 }.filter { $0.value.count > 1 }.keys)")
        for refund in snapshot.refunds {
            let state = refund.bookingID.flatMap { snapshot.sagas[$0]?.state }
            #expect(state != nil && state != "confirmed", "refund \(refund.idempotencyKey) for a booking that is \(state ?? "unknown")")
        }
        #expect(snapshot.deadLetters.count { $0.kind == "review" } == snapshot.refunds.count)
        #expect(snapshot.deadLetters.filter { $0.kind != "review" }.map(\.error) == [])
    }

    /// Waits (up to 30 s) until the pollers have expired every booking still awaiting payment.
    private func waitUntilNoneAwaiting(_ postgres: PostgresClient) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var left = -1
        while ContinuousClock.now < deadline {
            left = try await postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'awaiting_payment'")
            if left == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("waited 30 s for the pollers; \(left) bookings still await payment")
    }

    /// The seat map once it shows what Postgres says (Redis is released after each commit), or after 10 s.
    private func settledSeatMap(
        _ client: any TestClientProtocol, _ event: String, cases: [SagaCase], snapshot: SagaTableSnapshot
    ) async throws -> [String: String] {
        let expected = Dictionary(
            uniqueKeysWithValues: cases.map { ($0.seat, snapshot.sagas[$0.booking.id]?.state == "confirmed" ? "sold" : "available") })
        let deadline = ContinuousClock.now + .seconds(10)
        var states = try await seatStates(client, event)
        while states != expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            states = try await seatStates(client, event)
        }
        return states
    }

    /// When the payment is made (by the provider's clock) relative to the booking's due time.
    enum LatePayment: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case madeBeforeDue = "made before payment_due_at"
        case madeAfterDeadline = "made after the deadline"
        var testDescription: String { rawValue }
    }

    @Test(
        "A payment arriving after expiry -> refund requested, review dead letter, booking stays expired, and the seat is never double-sold even when another customer booked it in between",
        arguments: LatePayment.allCases)
    func paymentAfterExpiry(_ made: LatePayment) async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let first = try await client.booked(event, ["S1"], customer: "cus_1")
            try await world.publish(
                PaymentIntentCreated(bookingID: first.id, provider: "stripe", providerRef: "pi_first", clientSecret: "pi_first_secret"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.bookings WHERE booking_id = \(first.id.uuid) AND payment_provider_ref = 'pi_first'", equals: 1)
            let expiry = first.dueAt.addingTimeInterval(Self.grace + 1)
            let poller = SagaDeadlinePoller(
                postgres: world.postgres, holds: SeatHoldStore(redis: world.redis), logger: TestEnvironment.logger, now: { expiry })
            #expect(try await poller.expireDue() == 1)
            #expect(try await world.status(first.id) == "expired")

            // Another customer holds and books the released seat.
            let second = try await client.booked(event, ["S1"], customer: "cus_2")

            // Then the first customer's payment is processed (and delivered again), followed by an event of the
            // same booking that marks the end of its lane.
            let madeAt = made == .madeBeforeDue ? first.dueAt.addingTimeInterval(-30) : expiry.addingTimeInterval(5)
            let payment = try paid(first, reference: "pi_first", event: "evt_first_paid", at: madeAt)
            let envelope = try await world.publish(payment)
            try await world.publish(payment, envelope: envelope)
            let marker = try await world.publish(
                PaymentIntentCreated(bookingID: first.id, provider: "stripe", providerRef: "pi_marker", clientSecret: "pi_marker_secret"))
            try await world.waitUntil("SELECT count(*) FROM messaging.inbox WHERE event_id = \(marker.id.uuid)", equals: 1)

            #expect(try await world.status(first.id) == "expired")
            let saga = try await client.call(.get, "/v1/bookings/\(first.id)/saga")
            #expect(saga["state"] == "expired" && saga["version"] == 2)
            let refunds = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            #expect(refunds.count == 1, "one refund for the payment delivered twice: \(refunds)")
            let refund = try #require(refunds.first)
            #expect(refund.bookingID == first.id && refund.providerRef == "pi_first" && refund.amount == first.amount)
            #expect(refund.reason == .latePayment && refund.idempotencyKey == "refund-stripe-evt_first_paid")
            let reviews = try await world.postgres.query(
                "SELECT aggregate_id, event_id, error FROM messaging.dead_letters WHERE kind = 'review' AND status = 'open'")
            #expect(reviews.count == 1)
            let review = try #require(reviews.first)
            #expect(try review.decode(String.self, at: 0) == first.id.description, "the review names the booking")
            #expect(try review.decode(UUID.self, at: 1) == envelope.id.uuid)
            #expect(try review.decode(String.self, at: 2).hasPrefix("late_payment"))
            #expect(try await world.outbox(type: "booking.confirmed").isEmpty)

            // The second booking is untouched and holds the seat, the only active booking of it.
            #expect(try await world.status(second.id) == "pending_payment")
            let active = try await world.postgres.query(
                "SELECT booking_id FROM booking.booking_seats WHERE seat_id = 'S1' AND released_at IS NULL"
            ).map { try $0.decode(UUID.self, at: 0) }
            #expect(active == [second.id.uuid])
            #expect(try await seatStates(client, event) == ["S1": "held", "S2": "available"])
            let third = try await client.hold(event, ["S1"], customer: "cus_3")
            #expect(third.status == .conflict, "S1 is the second customer's: \(third.status)")

            // The second customer pays: confirmed and sold, the first booking still expired and refunded once.
            try await world.publish(try paid(second, reference: "pi_second"))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(second.id.uuid) AND state = 'confirmed'", equals: 1)
            let confirmed = try await world.outbox(type: "booking.confirmed").map { try $0.decode(BookingConfirmed.self) }
            #expect(confirmed.map(\.bookingID) == [second.id] && confirmed.first?.customerID.rawValue == "cus_2")
            #expect(try await seatStates(client, event) == ["S1": "sold", "S2": "available"])
            #expect(try await poller.expireDue() == 0)
            #expect(try await world.status(first.id) == "expired")
            #expect(try await world.outbox(type: "refund.requested").count == 1)
            #expect(
                try await world.postgres.count("SELECT count(*) FROM booking.booking_seats WHERE seat_id = 'S1' AND released_at IS NULL") == 1)
        }
    }
}
