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

/// The saga consumer on a stream of the test's own, fed by the test as the payments service would.
struct SagaWorld: Sendable {
    let postgres: PostgresClient
    let redis: RedisClient
    let stream: String
    /// The operator's side of the sagas, on the fixture client.
    var operations: SagaOperations { SagaOperations(postgres: postgres, refundPendingBound: .seconds(3600)) }

    /// Runs `body` with a client of a fresh booking service whose saga consumer runs meanwhile.
    static func run(settings: [String: String] = [:], _ body: @Sendable (any TestClientProtocol, SagaWorld) async throws -> Void) async throws {
        let harness = try await BookingHarness.make(settings: settings)
        let stream = "stream:payments-test-\(UUID().uuidString.prefix(8).lowercased())"
        let consumer = harness.parts.sagaConsumer(
            logger: TestEnvironment.logger,
            tuning: { configuration in
                configuration.stream = stream
                configuration.initialBackoff = .milliseconds(20)
            })
        let world = SagaWorld(postgres: harness.postgres, redis: try RedisClient.forTests(connections: 2), stream: stream)
        try await harness.run { client in
            let task = Task { try await consumer.run() }
            do {
                try await body(client, world)
            } catch {
                task.cancel()
                _ = try? await task.value
                throw error
            }
            task.cancel()
            _ = try? await task.value
        }
        await world.redis.shutdown()
    }

    /// Publishes `event` as the payments service's relay would; returns the envelope.
    @discardableResult
    func publish(_ event: some DomainEvent, envelope given: EventEnvelope? = nil) async throws -> EventEnvelope {
        let envelope =
            try given
            ?? EventEnvelope(
                event: event, occurredAt: Date(), sequence: 1, correlationID: "saga-test", causationID: nil, producer: .paymentsWebhook)
        _ = try await redis.xadd(stream, fields: [(Streams.envelopeField, envelope.jsonBytes())])
        return envelope
    }

    /// Publishes `envelope` as it is (a first delivery, or the relay publishing it again).
    func redeliver(_ envelope: EventEnvelope) async throws {
        _ = try await redis.xadd(stream, fields: [(Streams.envelopeField, envelope.jsonBytes())])
    }

    /// Waits (up to 10 s) until the saga's group has read and acknowledged everything on the stream.
    func settle() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let group = try await redis.xinfoGroups(stream).first { $0.name == SagaCoordinator.group }
            if let group, group.pending == 0, group.lag == 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the saga's group did not catch up with \(stream) within 10 s")
    }

    /// Waits (up to 10 s) until `statement` counts `expected`.
    func waitUntil(_ statement: PostgresStatement, equals expected: Int, file: String = #fileID, line: Int = #line) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        var count = -1
        while ContinuousClock.now < deadline {
            count = try await postgres.count(statement, file: file, line: line)
            if count == expected { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("waited 10 s for \(expected) from \(statement.sql) \(statement.binds); last count \(count)")
    }

    func outbox(type: String) async throws -> [EventEnvelope] {
        try await postgres.query("SELECT envelope::text FROM messaging.outbox WHERE event_type = \(type) ORDER BY position").map {
            try EventEnvelope(jsonData: Data(try $0.decode(String.self, at: 0).utf8))
        }
    }

    func status(_ booking: BookingID) async throws -> String? {
        try await postgres.query("SELECT status FROM booking.bookings WHERE booking_id = \(booking.uuid)").first.map {
            try $0.decode(String.self, at: 0)
        }
    }
}

/// A booked seat: the booking's id, amount and due time.
struct Booked: Sendable {
    let id: BookingID
    let amount: Money
    let dueAt: Date
}

extension TestClientProtocol {
    func booked(_ event: String, _ seats: [String], customer: String) async throws -> Booked {
        let answer = try await holdAndBook(event, seats, customer: customer)
        guard answer.status == .created, let id = answer["booking_id"]?.stringValue.flatMap(UUID.init(uuidString:)),
            let amount = answer["amount"]?.integerValue, let due = answer["payment_due_at"]?.stringValue
        else { throw HarnessError("booking answered \(answer.status)") }
        return Booked(id: BookingID(id), amount: Money(amount: amount, currency: .eur), dueAt: try RFC3339.date(from: due))
    }
}

func paid(
    _ booking: Booked?, amount: Money? = nil, reference: String, event: String = "evt_\(UUID().uuidString.prefix(8))", at: Date = Date()
)
    throws -> PaymentSucceeded
{
    PaymentSucceeded(
        paymentEventID: try PaymentEventID(parsing: event), provider: "stripe", providerRef: reference, bookingID: booking?.id,
        amount: amount ?? booking?.amount ?? Money(amount: 100, currency: .eur), providerCreatedAt: at, receivedAt: Date())
}

@Suite("Saga coordinator: payments confirm, cancel or are refunded")
struct SagaCoordinatorTests {
    @Test("intent created then paid (delivered twice, and reported again): payment shown, confirmed once, seats sold")
    func confirmedOnce() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 3)
            let booking = try await client.booked(event, ["S1", "S2"], customer: "cus_1")
            try await world.publish(PaymentIntentCreated(bookingID: booking.id, provider: "stripe", providerRef: "pi_1", clientSecret: "pi_1_secret"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.bookings WHERE booking_id = \(booking.id.uuid) AND payment_provider_ref = 'pi_1'", equals: 1)
            let shown = try await client.call(.get, "/v1/bookings/\(booking.id)?customer_id=cus_1")
            #expect(shown["payment"]?["provider_ref"] == "pi_1" && shown["payment"]?["client_secret"] == "pi_1_secret")

            let payment = try paid(booking, reference: "pi_1", event: "evt_paid")
            let first = try await world.publish(payment)
            try await world.publish(payment, envelope: first)
            // The same payment reported by a second source (another event id, same intent).
            try await world.publish(try paid(booking, reference: "pi_1", event: "pe_internal_1"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'confirmed'", equals: 1)
            try await world.waitUntil(
                "SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(booking.id.uuid) AND step = 'payment_succeeded' AND outcome = 'skipped'",
                equals: 1)
            // A failure reported after the success changes nothing.
            try await world.publish(
                PaymentFailed(
                    paymentEventID: try PaymentEventID(parsing: "evt_late_failure"), provider: "stripe", providerRef: "pi_1", bookingID: booking.id,
                    amount: booking.amount, providerCreatedAt: Date(), receivedAt: Date(), reason: "card_declined", isFinal: true))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(booking.id.uuid) AND step = 'payment_failed' AND outcome = 'skipped'",
                equals: 1)
            #expect(try await world.status(booking.id) == "confirmed")
            let confirmed = try await world.outbox(type: "booking.confirmed")
            #expect(confirmed.count == 1)
            let data = try #require(try confirmed.first?.decode(BookingConfirmed.self))
            #expect(data.bookingID == booking.id && data.amount == booking.amount && data.providerRef == "pi_1")
            #expect(data.seatIDs.map(\.rawValue) == ["S1", "S2"] && data.hostID.rawValue == "host_1")
            #expect(try await world.outbox(type: "refund.requested").isEmpty)
            let seats = try await client.call(.get, "/v1/events/\(event)/seats")
            let states = Dictionary(
                uniqueKeysWithValues: (seats["seats"]?.arrayValue ?? []).compactMap { seat in
                    seat["seat_id"]?.stringValue.map { ($0, seat["state"]?.stringValue ?? "") }
                })
            #expect(states == ["S1": "sold", "S2": "sold", "S3": "available"])
            // The saga's view: state, no deadline once confirmed, and the step log in order.
            let saga = try await client.call(.get, "/v1/bookings/\(booking.id)/saga")
            #expect(saga.status == .ok)
            #expect(saga["state"] == "confirmed" && saga["deadline"] == .null && saga["version"] == 2)
            let steps = (saga["steps"]?.arrayValue ?? []).map { "\($0["step"]?.stringValue ?? "?"):\($0["outcome"]?.stringValue ?? "?")" }
            #expect(
                steps == [
                    "booking_requested:succeeded", "payment_intent_created:succeeded", "booking_confirmed:succeeded", "payment_succeeded:skipped",
                    "payment_failed:skipped",
                ])
            #expect(try await client.call(.get, "/v1/bookings/\(UUID())/saga").status == .notFound)
            #expect(try await client.call(.get, "/v1/bookings/\(booking.id)/saga", as: .anonymous).status == .unauthorized)
        }
    }

    @Test("wrong amount, wrong currency, unknown booking, late payment: refund requested and a review dead letter; never confirmed")
    func compensations() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 3)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            let late = try await client.booked(event, ["S2"], customer: "cus_2")
            try await world.publish(try paid(booking, amount: Money(amount: booking.amount.amount + 1, currency: .eur), reference: "pi_a"))
            try await world.publish(try paid(booking, amount: Money(amount: booking.amount.amount, currency: .usd), reference: "pi_b"))
            try await world.publish(try paid(nil, reference: "pi_nobody"))
            try await world.publish(try paid(Booked(id: BookingID(), amount: booking.amount, dueAt: Date()), reference: "pi_gone"))
            try await world.publish(try paid(late, reference: "pi_late", at: late.dueAt.addingTimeInterval(1)))
            try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE event_type = 'refund.requested'", equals: 5)
            try await world.waitUntil("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review' AND status = 'open'", equals: 5)
            let refunds = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            #expect(
                Dictionary(grouping: refunds, by: \.providerRef).mapValues { $0.map(\.reason.rawValue) } == [
                    "pi_a": ["amount_mismatch"], "pi_b": ["amount_mismatch"], "pi_nobody": ["unknown_booking"], "pi_gone": ["unknown_booking"],
                    "pi_late": ["late_payment"],
                ])
            #expect(refunds.first { $0.providerRef == "pi_b" }?.amount == Money(amount: booking.amount.amount, currency: .usd))
            #expect(try await world.status(booking.id) == "pending_payment")
            #expect(try await world.status(late.id) == "pending_payment")
            #expect(try await world.outbox(type: "booking.confirmed").isEmpty)
            // A payment with the right amount still confirms afterwards.
            try await world.publish(try paid(booking, reference: "pi_c"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'confirmed'", equals: 1)
        }
    }

    @Test("a failed attempt that is not final (Stripe payment_failed) keeps the booking waiting; a retry on the same intent confirms it")
    func nonFinalFailureThenRetry() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            for attempt in 1...2 {
                try await world.publish(
                    PaymentFailed(
                        paymentEventID: try PaymentEventID(parsing: "evt_declined_\(attempt)"), provider: "stripe", providerRef: "pi_retry",
                        bookingID: booking.id, amount: booking.amount, providerCreatedAt: Date(), receivedAt: Date(), reason: "card_declined",
                        isFinal: false))
            }
            try await world.waitUntil(
                "SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(booking.id.uuid) AND step = 'payment_attempt_failed' AND outcome = 'failed'",
                equals: 2)
            #expect(try await world.status(booking.id) == "pending_payment")
            #expect(try await world.outbox(type: "booking.cancelled").isEmpty)
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL") == 1)
            #expect(try await client.hold(event, ["S1"], customer: "cus_2").status == .conflict, "the seat stays with the waiting booking")

            try await world.publish(try paid(booking, reference: "pi_retry"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'confirmed'", equals: 1)
            #expect(try await world.outbox(type: "refund.requested").isEmpty)
        }
    }

    @Test("payment failed: cancelled, seats holdable again; a payment arriving after it is refunded, the booking stays cancelled")
    func failedThenLate() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            try await world.publish(
                PaymentFailed(
                    paymentEventID: try PaymentEventID(parsing: "evt_failed"), provider: "stripe", providerRef: "pi_f", bookingID: booking.id,
                    amount: booking.amount, providerCreatedAt: Date(), receivedAt: Date(), reason: "card_declined", isFinal: true))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'cancelled'", equals: 1)
            #expect(try await world.status(booking.id) == "cancelled")
            let cancelled = try #require(try await world.outbox(type: "booking.cancelled").first?.decode(BookingCancelled.self))
            #expect(cancelled.reason == .paymentFailed && cancelled.refundDue.isZero)
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL") == 0)
            // Redis releases the seat after the saga's commit (SagaCoordinator): the hold may have to wait a moment for it.
            var other = try await client.hold(event, ["S1"], customer: "cus_2")
            let deadline = ContinuousClock.now + .seconds(10)
            while other.status == .conflict && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                other = try await client.hold(event, ["S1"], customer: "cus_2")
            }
            #expect(other.status == .created, "the seat is holdable again: \(other.status)")

            try await world.publish(try paid(booking, reference: "pi_f"))
            try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE event_type = 'refund.requested'", equals: 1)
            let refund = try #require(try await world.outbox(type: "refund.requested").first?.decode(RefundRequested.self))
            #expect(refund.reason == .latePayment && refund.bookingID == booking.id && refund.amount == booking.amount)
            #expect(try await world.postgres.count("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'") == 1)
            #expect(try await world.status(booking.id) == "cancelled")
        }
    }

    @Test("cancelling a confirmed booking 25 elapsed hours before the event refunds in full, 23 hours before refunds nothing; across a DST change")
    func refundPolicyAcrossDST() async throws {
        try await SagaWorld.run { client, world in
            // New York moves its clocks forward at 02:00 on 2027-03-14: 25 elapsed hours before noon
            // that day is 10:00 the day before (26 hours on the wall clock), 23 elapsed hours is 12:00.
            let startsAt = try RFC3339.date(from: "2027-03-14T12:00:00-04:00")
            let event = try await client.createEvent(seats: 2, startsAt: RFC3339.string(from: startsAt), timeZone: "America/New_York")
            let early = try await client.booked(event, ["S1"], customer: "cus_1")
            let late = try await client.booked(event, ["S2"], customer: "cus_2")
            try await world.publish(try paid(early, reference: "pi_early"))
            try await world.publish(try paid(late, reference: "pi_late"))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE state = 'confirmed'", equals: 2)
            let bookings = PostgresBookingRepository(postgres: world.postgres)
            let twentyFive = startsAt.addingTimeInterval(-25 * 3600)
            #expect(RFC3339.string(from: twentyFive, in: try #require(TimeZone(identifier: "America/New_York"))).hasPrefix("2027-03-13T10:00"))
            let refunded = try await bookings.cancel(
                early.id, reason: .customer, customer: try CustomerID("cus_1"), client: nil, correlationID: "t", at: twentyFive)
            guard case .cancelled(let first, _) = refunded else { throw HarnessError("not cancelled: \(refunded)") }
            #expect(first.status.rawValue == "refund_pending" && first.sagaState == .refundPending)
            let steps = try await world.postgres.query(
                "SELECT step, to_state FROM booking.saga_steps WHERE booking_id = \(early.id.uuid) ORDER BY step_id"
            ).map { "\(try $0.decode(String.self, at: 0))->\(try $0.decode(String?.self, at: 1) ?? "-")" }
            #expect(steps.suffix(2) == ["cancel_requested->cancel_requested", "refund_requested->refund_pending"])
            let noRefund = try await bookings.cancel(
                late.id, reason: .customer, customer: try CustomerID("cus_2"), client: nil, correlationID: "t",
                at: startsAt.addingTimeInterval(-23 * 3600))
            guard case .cancelled(let second, _) = noRefund else { throw HarnessError("not cancelled: \(noRefund)") }
            #expect(second.status.rawValue == "cancelled" && second.sagaState == .cancelled)

            let cancellations = try await world.outbox(type: "booking.cancelled").map { try $0.decode(BookingCancelled.self) }
            #expect(cancellations.first { $0.bookingID == early.id }?.refundDue == early.amount)
            #expect(cancellations.first { $0.bookingID == late.id }?.refundDue.isZero == true)
            let refunds = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            #expect(refunds.count == 1)
            let refund = try #require(refunds.first)
            #expect(refund.bookingID == early.id && refund.providerRef == "pi_early" && refund.amount == early.amount)
            #expect(refund.reason == .customerCancellation && refund.idempotencyKey == "refund-cancel-\(early.id)")
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL") == 0)
            // As the cancel route does after the commit (the repository is called directly here).
            for cancelled in [first, second] {
                try await SeatHoldStore(redis: world.redis).releaseBookedSeats(
                    event: cancelled.eventID, holdID: cancelled.holdID, seats: cancelled.seatIDs)
            }
            #expect(try await client.hold(event, ["S1", "S2"], customer: "cus_3").status == .created)

            // The provider's refund completes the cancellation; a second cancel answers it unchanged.
            try await world.publish(RefundSucceeded(refundID: refund.refundID, bookingID: early.id, providerRef: "pi_early", amount: early.amount))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(early.id.uuid) AND state = 'refunded'", equals: 1)
            #expect(try await world.status(early.id) == "refunded")
            let again = try await client.call(.post, "/v1/bookings/\(early.id)/cancel", json: ["customer_id": "cus_1"])
            #expect(again.status == .ok && again["status"] == "refunded")
        }
    }

    @Test(
        "a refused refund leaves the cancellation in compensation_failed, listed for an operator; resume asks again once, then refunded"
    )
    func refundRefusedThenResumed() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            let other = try await client.booked(event, ["S2"], customer: "cus_2")
            try await world.publish(try paid(booking, reference: "pi_r"))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE state = 'confirmed'", equals: 1)
            let cancelled = try await client.call(.post, "/v1/bookings/\(booking.id)/cancel", json: ["customer_id": "cus_1"])
            #expect(cancelled.status == .ok && cancelled["status"] == "refund_pending")
            let refund = try #require(try await world.outbox(type: "refund.requested").first?.decode(RefundRequested.self))
            #expect(!refund.lookupExisting)
            try await world.publish(
                RefundFailed(refundID: refund.refundID, bookingID: booking.id, providerRef: "pi_r", amount: booking.amount, error: "charge_disputed"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'compensation_failed' AND last_error = 'charge_disputed'",
                equals: 1)
            #expect(try await world.status(booking.id) == "refund_pending")

            // The admin list finds it by state, with every state's count; the unpaid one is not overdue yet.
            let failed = try await client.call(.get, "/v1/admin/sagas?state=compensation_failed", as: .admin)
            #expect(failed.status == .ok)
            #expect(failed["sagas"]?.arrayValue?.compactMap { $0["booking_id"]?.stringValue } == [booking.id.description])
            #expect(
                failed["sagas"]?.arrayValue?.first?["last_error"] == "charge_disputed"
                    && failed["sagas"]?.arrayValue?.first?["status"] == "refund_pending")
            #expect(
                failed["counts"]?["compensation_failed"]?["total"]?.integerValue == 1
                    && failed["counts"]?["awaiting_payment"]?["total"]?.integerValue == 1)
            #expect(
                failed["counts"]?["refunded"]?["total"]?.integerValue == 0 && failed["counts"]?["awaiting_payment"]?["overdue"]?.integerValue == 0)
            let overdue = try await client.call(.get, "/v1/admin/sagas?overdue=true", as: .admin)
            #expect(overdue.status == .ok && overdue["sagas"]?.arrayValue?.isEmpty == true)
            let all = try await client.call(.get, "/v1/admin/sagas?limit=1", as: .admin)
            let cursor = try #require(all["next_cursor"]?.stringValue)
            let rest = try await client.call(.get, "/v1/admin/sagas?limit=1&cursor=\(cursor)", as: .admin)
            #expect(
                Set([all, rest].compactMap { $0["sagas"]?.arrayValue?.first?["booking_id"]?.stringValue }) == [
                    booking.id.description, other.id.description,
                ])
            #expect(rest["next_cursor"] == .null)
            for bad in ["state=lost", "overdue=yes", "cursor=forged", "limit=0"] {
                #expect(try await client.call(.get, "/v1/admin/sagas?\(bad)", as: .admin).status == .badRequest, "\(bad)")
            }
            for crafted in CraftedCursors.all {
                let escaped = crafted.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? crafted
                let answer = try await client.call(.get, "/v1/admin/sagas?cursor=\(escaped)", as: .admin)
                #expect(answer.status == .badRequest && answer["error"]?["code"]?.stringValue == "invalid_cursor", "\(crafted)")
            }
            #expect(try await client.call(.get, "/v1/admin/sagas").status == .forbidden)

            // Resume: the operator is required; only compensation_failed resumes; an unknown saga is 404.
            let resumePath = "/v1/admin/sagas/\(booking.id)/resume"
            #expect(try await client.call(.post, resumePath, as: .admin).status == .badRequest)
            #expect(
                try await client.call(.post, "/v1/admin/sagas/\(other.id)/resume", as: .admin, headers: [.operatorName: "ops"]).status == .conflict)
            #expect(try await client.call(.post, "/v1/admin/sagas/\(UUID())/resume", as: .admin, headers: [.operatorName: "ops"]).status == .notFound)
            let resumed = try await client.call(.post, resumePath, as: .admin, headers: [.operatorName: "ops"])
            #expect(resumed.status == .ok && resumed["state"] == "refund_pending" && resumed["attempts"]?.integerValue == 1)
            #expect(resumed["steps"]?.arrayValue?.last?["step"] == "saga_resumed" && resumed["deadline"] != .null)
            let again = try await client.call(.post, resumePath, as: .admin, headers: [.operatorName: "ops"])
            #expect(again.status == .conflict && again["error"]?["details"]?["state"] == "refund_pending")
            // The audit log has the one resume that changed the saga (the 400, 404 and 409s wrote nothing).
            let audit = try await client.call(.get, "/v1/admin/audit?action=saga.resumed", as: .admin)
            let entries = audit["entries"]?.arrayValue ?? []
            #expect(audit.status == .ok && entries.count == 1)
            #expect(entries.first?["operator"] == "ops" && entries.first?["target_id"]?.stringValue == booking.id.description)
            #expect(entries.first?["route"] == "POST /v1/admin/sagas/{id}/resume" && entries.first?["outcome"] == "resumed")
            #expect(entries.first?["request_id"] == resumed.headers[.requestID].map(JSONValue.string))
            #expect(entries.first?["details"]?["attempt"]?.integerValue == 1 && entries.first?["service"] == "booking")
            let requests = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            #expect(requests.count == 2)
            let retry = try #require(requests.last)
            #expect(retry.lookupExisting && retry.reason == .operatorResume && retry.idempotencyKey == "refund-cancel-\(booking.id)-resume-1")
            #expect(retry.providerRef == "pi_r" && retry.amount == booking.amount && retry.refundID != refund.refundID)

            try await world.publish(RefundSucceeded(refundID: retry.refundID, bookingID: booking.id, providerRef: "pi_r", amount: booking.amount))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'refunded'", equals: 1)
            #expect(try await world.status(booking.id) == "refunded")

            // The gauges read the same counts.
            let counts = try await world.operations.counts()
            #expect(counts[.refunded] == .init(total: 1, overdue: 0) && counts[.compensationFailed] == .init(total: 0, overdue: 0))
            try await SagaStateGauges(operations: world.operations, logger: TestEnvironment.logger).refresh()
            let metrics = try await client.call(.get, "/metrics")
            let exposition = String(decoding: metrics.bytes, as: UTF8.self)
            #expect(
                exposition.contains("saga_states{state=\"compensation_failed\"}") && exposition.contains("sagas_overdue{state=\"refund_pending\"}"))
        }
    }
}
