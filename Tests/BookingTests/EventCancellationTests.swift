import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Event cancellation: the whole event, its bookings in batches, refunds in full")
struct EventCancellationTests {
    /// The worker of `world`'s service, on the fixture client, with small batches.
    private static func worker(_ world: SagaWorld, batchSize: Int = 2) -> EventCancellationWorker {
        EventCancellationWorker(
            store: EventCancellationStore(postgres: world.postgres, runner: SagaRunner(decider: SagaDecider())),
            holds: SeatHoldStore(redis: world.redis), logger: TestEnvironment.logger, batchSize: batchSize)
    }

    private static func state(_ world: SagaWorld, _ booking: BookingID) async throws -> String? {
        try await world.postgres.query("SELECT state FROM booking.sagas WHERE booking_id = \(booking.uuid)").first.map {
            try $0.decode(String.self, at: 0)
        }
    }

    @Test(
        "cancelled 2 h before it starts: pending bookings cancelled, confirmed ones refunded in full despite the 24 h policy, others untouched; holds and bookings refused; progress on GET"
    )
    func cancelsAndRefunds() async throws {
        try await SagaWorld.run { client, world in
            let startsAt = RFC3339.string(from: Date().addingTimeInterval(2 * 3600))
            let event = try await client.createEvent(seats: 8, startsAt: startsAt)
            let pending = try await client.booked(event, ["S1"], customer: "cus_1")
            let confirmed = try await client.booked(event, ["S2", "S3"], customer: "cus_2")
            let cancelledEarlier = try await client.booked(event, ["S4"], customer: "cus_3")
            let lateCancelled = try await client.booked(event, ["S5"], customer: "cus_4")
            let other = try await client.createEvent(seats: 1)
            let otherBooking = try await client.booked(other, ["S1"], customer: "cus_5")
            for (booking, reference) in [(confirmed, "pi_confirmed"), (lateCancelled, "pi_late"), (otherBooking, "pi_other")] {
                try await world.publish(try paid(booking, reference: reference))
            }
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE state = 'confirmed'", equals: 3)
            #expect(try await client.call(.post, "/v1/bookings/\(cancelledEarlier.id)/cancel", json: ["customer_id": "cus_3"]).status == .ok)
            // Within 24 h of the start the policy refunds nothing to a customer who cancels.
            let noRefund = try await client.call(.post, "/v1/bookings/\(lateCancelled.id)/cancel", json: ["customer_id": "cus_4"])
            #expect(noRefund["status"] == "cancelled")
            let hold = try await client.hold(event, ["S6"], customer: "cus_6")
            let holdID = try #require(hold["hold_id"]?.stringValue)
            #expect(try await client.call(.get, "/v1/events/\(event)")["status"] == "active")

            let answer = try await client.call(
                .post, "/v1/events/\(event)/cancel", as: .admin, json: ["reason": "  the venue flooded  "], headers: [.operatorName: "dana"])
            #expect(answer.status == .accepted)
            #expect(answer["status"] == "cancelled" && answer["cancellation"]?["reason"] == "the venue flooded")
            #expect(answer["cancellation"]?["cancelled_by"] == "dana" && answer["cancellation"]?["completed_at"] == .null)
            #expect(answer["cancellation"]?["bookings_total"] == 2 && answer["cancellation"]?["bookings_remaining"] == 2)
            let announced = try #require(try await world.outbox(type: "event.cancelled").first?.decode(EventCancelled.self))
            #expect(announced.eventID.description == event && announced.bookings == 2 && announced.reason == "the venue flooded")

            // From the commit on: no hold, and the live hold made before cannot become a booking.
            #expect(try await client.hold(event, ["S7"], customer: "cus_7").errorCode == "event_cancelled")
            let late = try await client.book(holdID, customer: "cus_6")
            #expect(late.status == .conflict && late.errorCode == "event_cancelled")
            #expect(try await client.hold(other, ["S1"], customer: "cus_7").errorCode == "seats_unavailable")

            #expect(try await Self.worker(world).workOnce() == 2)
            #expect(try await Self.state(world, pending.id) == "cancelled")
            #expect(try await Self.state(world, confirmed.id) == "refund_pending")
            #expect(try await Self.state(world, cancelledEarlier.id) == "cancelled")
            #expect(try await Self.state(world, lateCancelled.id) == "cancelled")
            #expect(try await Self.state(world, otherBooking.id) == "confirmed")
            let refunds = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            #expect(refunds.count == 1)
            let refund = try #require(refunds.first)
            #expect(refund.bookingID == confirmed.id && refund.amount == confirmed.amount && refund.reason == .eventCancellation)
            #expect(refund.providerRef == "pi_confirmed" && refund.idempotencyKey == "refund-cancel-\(confirmed.id)")
            let cancellations = try await world.outbox(type: "booking.cancelled").map { try $0.decode(BookingCancelled.self) }
            let byEvent: Set<BookingID> = Set(cancellations.filter { $0.reason == .eventCancelled }.map(\.bookingID))
            #expect(byEvent == [pending.id, confirmed.id])
            #expect(
                try await world.postgres.count(
                    "SELECT count(*) FROM booking.booking_seats WHERE event_id = \(UUID(uuidString: event)) AND released_at IS NULL") == 0)

            var progress = try await client.call(.get, "/v1/events/\(event)")
            #expect(progress["cancellation"]?["bookings_done"] == 2 && progress["cancellation"]?["bookings_remaining"] == 0)
            #expect(progress["cancellation"]?["completed_at"]?.stringValue != nil)
            #expect(progress["cancellation"]?["refunds"] == ["requested": 1, "succeeded": 0, "failed": 0])

            try await world.publish(
                RefundSucceeded(refundID: refund.refundID, bookingID: confirmed.id, providerRef: "pi_confirmed", amount: confirmed.amount))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(confirmed.id.uuid) AND state = 'refunded'", equals: 1)
            progress = try await client.call(.get, "/v1/events/\(event)")
            #expect(progress["cancellation"]?["refunds"] == ["requested": 0, "succeeded": 1, "failed": 0])

            // Again: 200, the first reason stands; an unknown event is 404, a missing reason 400.
            let again = try await client.call(.post, "/v1/events/\(event)/cancel", as: .admin, json: ["reason": "another reason"])
            #expect(again.status == .ok && again["cancellation"]?["reason"] == "the venue flooded")
            #expect(try await client.call(.post, "/v1/events/\(UUID())/cancel", as: .admin, json: ["reason": "x"]).status == .notFound)
            #expect(try await client.call(.post, "/v1/events/\(other)/cancel", as: .admin, json: [:]).status == .badRequest)
            #expect(try await client.call(.post, "/v1/events/\(other)/cancel", as: .admin, json: ["reason": " "]).status == .unprocessableContent)
            let byClient = try await client.call(.post, "/v1/events/\(other)/cancel", json: ["reason": "x"])
            #expect(byClient.status == .forbidden, "\(byClient.status) \(byClient.errorCode ?? "-")")
            #expect(try await Self.worker(world).workOnce() == 0)
            let audit = try await world.postgres.query(
                "SELECT operator, outcome, http_status FROM platform.audit_log WHERE action = 'event.cancelled' AND target_id = \(event)")
            #expect(audit.count == 1)
            #expect(try audit.first?.decode(String.self, at: 0) == "dana" && (try audit.first?.decode(Int32.self, at: 2)) == 202)
        }
    }

    @Test("bookings racing the cancellation: each is refused or cancelled by it, none stays pending")
    func bookingsRacingTheCancellation() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 60)
            let holds = try await withThrowingTaskGroup(of: (customer: String, hold: String?).self) { group in
                for seat in 1...60 {
                    group.addTask { ("cus_\(seat)", try await client.hold(event, ["S\(seat)"], customer: "cus_\(seat)")["hold_id"]?.stringValue) }
                }
                return try await group.reduce(into: [(customer: String, hold: String)]()) { holds, made in
                    if let hold = made.hold { holds.append((made.customer, hold)) }
                }
            }
            #expect(holds.count == 60)
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for (index, hold) in holds.enumerated() {
                    group.addTask { try await client.book(hold.hold, customer: hold.customer) }
                    if index == 30 {
                        group.addTask { try await client.call(.post, "/v1/events/\(event)/cancel", as: .admin, json: ["reason": "storm"]) }
                    }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            let cancel = try #require(answers.first { $0["cancellation"] != nil })
            #expect(cancel.status == .accepted)
            let bookings = answers.filter { $0["cancellation"] == nil }
            #expect(
                bookings.allSatisfy { $0.status == .created || $0.errorCode == "event_cancelled" },
                "\(bookings.filter { $0.status != .created }.map { "\($0.status) \($0.errorCode ?? "-")" })")
            let created = bookings.filter { $0.status == .created }.count
            let seen = Dictionary(grouping: answers, by: { "\($0.status.code) \($0.errorCode ?? "-")" }).mapValues(\.count)
            #expect(cancel["cancellation"]?["bookings_total"]?.integerValue == Int64(created), "answers: \(seen), created: \(created)")
            _ = try await Self.worker(world, batchSize: 7).workOnce()
            let eventID = try #require(UUID(uuidString: event))
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.bookings WHERE event_id = \(eventID)") == created)
            #expect(
                try await world.postgres.count(
                    "SELECT count(*) FROM booking.bookings WHERE event_id = \(eventID) AND status = 'cancelled'") == created)
            #expect(try await client.call(.get, "/v1/events/\(event)")["cancellation"]?["bookings_remaining"] == 0)
        }
    }

    @Test("an event that has ended cannot be cancelled (409 event_ended)")
    func endedEvent() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 1, startsAt: RFC3339.string(from: Date().addingTimeInterval(-5 * 3600)))
            let answer = try await client.call(.post, "/v1/events/\(event)/cancel", as: .admin, json: ["reason": "too late"])
            #expect(answer.status == .conflict && answer.errorCode == "event_ended")
            #expect(try await world.outbox(type: "event.cancelled").isEmpty)
        }
    }
}
