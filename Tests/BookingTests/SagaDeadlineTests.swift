import Foundation
import HTTPTypes
import HummingbirdTesting
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Saga deadlines: overdue bookings expire, once, after the grace")
struct SagaDeadlineTests {
    /// The default payment grace (`PAYMENT_GRACE`, 2 minutes).
    static let grace: TimeInterval = 120

    @Test("nothing expires before payment_due_at + grace; then each overdue booking expires once and its seats are holdable again")
    func expiresAfterGrace() async throws {
        let harness = try await BookingHarness.make()
        let parts = harness.parts
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 4)
            var bookings: [Booked] = []
            for index in 1...3 { bookings.append(try await client.booked(event, ["S\(index)"], customer: "cus_\(index)")) }
            let earliest = try #require(bookings.map(\.dueAt).min())
            let latest = try #require(bookings.map(\.dueAt).max())
            func poller(at instant: Date) -> SagaDeadlinePoller {
                SagaDeadlinePoller(postgres: parts.app.postgres, holds: parts.holds, logger: TestEnvironment.logger, now: { instant })
            }
            #expect(try await poller(at: earliest.addingTimeInterval(Self.grace - 1)).expireDue() == 0)
            #expect(try await poller(at: latest.addingTimeInterval(Self.grace + 1)).expireDue() == 3)
            #expect(try await poller(at: latest.addingTimeInterval(Self.grace + 60)).expireDue() == 0)
            for (index, booking) in bookings.enumerated() {
                let answer = try await client.call(.get, "/v1/bookings/\(booking.id)?customer_id=cus_\(index + 1)", as: .admin)
                #expect(answer["status"] == "expired" && answer["saga_state"] == "expired" && answer["expired_at"] != nil)
            }
            #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'booking.expired'") == 3)
            #expect(try await postgres.count("SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL") == 0)
            #expect(try await postgres.count("SELECT count(*) FROM booking.saga_steps WHERE step = 'booking_expired'") == 3)
            let again = try await client.hold(event, ["S1", "S2", "S3"], customer: "cus_9")
            #expect(again.status == .created, "the expired bookings' seats are holdable again")
        }
    }

    @Test("a cancellation's refund unconfirmed past REFUND_PENDING_BOUND becomes compensation_failed, listed as such; not a moment before")
    func refundPendingPastItsBound() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            try await world.publish(try paid(booking, reference: "pi_bound"))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE state = 'confirmed'", equals: 1)
            let bookings = PostgresBookingRepository(postgres: world.postgres, refundPendingBound: .seconds(3600))
            let cancelledAt = Date()
            guard
                case .cancelled = try await bookings.cancel(
                    booking.id, reason: .customer, customer: nil, client: nil, correlationID: "t", at: cancelledAt)
            else { throw HarnessError("not cancelled") }
            let deadline = try #require(
                try await world.postgres.query("SELECT deadline FROM booking.sagas WHERE booking_id = \(booking.id.uuid)").first?.decode(
                    Date?.self, at: 0))
            #expect(abs(deadline.timeIntervalSince(cancelledAt) - 3600) < 0.001)
            func poller(at instant: Date) -> SagaDeadlinePoller {
                SagaDeadlinePoller(
                    postgres: world.postgres, holds: SeatHoldStore(redis: world.redis), logger: TestEnvironment.logger, now: { instant })
            }
            // Its payment deadline is long past by then, but a refund_pending saga is not "expired".
            #expect(try await poller(at: deadline.addingTimeInterval(-1)).expireDue() == 0)
            #expect(try await world.operations.counts(at: deadline)[.refundPending] == .init(total: 1, overdue: 1))
            #expect(try await poller(at: deadline).expireDue() == 1)
            #expect(try await poller(at: deadline.addingTimeInterval(60)).expireDue() == 0)
            let saga = try #require(try await world.operations.saga(booking.id))
            #expect(saga.state == "compensation_failed" && saga.deadline == nil && saga.lastError?.contains("bound") == true)
            #expect(saga.steps.last?.step == "refund_overdue" && saga.steps.last?.fromState == "refund_pending")
            #expect(try await world.status(booking.id) == "refund_pending")
            #expect(try await world.outbox(type: "booking.expired").isEmpty)
            #expect(try await world.operations.counts()[.compensationFailed]?.total == 1)
            // A late refund.succeeded still completes it.
            let refund = try #require(try await world.outbox(type: "refund.requested").first?.decode(RefundRequested.self))
            try await world.publish(
                RefundSucceeded(refundID: refund.refundID, bookingID: booking.id, providerRef: "pi_bound", amount: booking.amount))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'refunded'", equals: 1)
        }
    }

    @Test("an on-time payment processed during the grace confirms; the deadline then leaves it alone")
    func paymentDuringGrace() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let onTime = try await client.booked(event, ["S1"], customer: "cus_1")
            let unpaid = try await client.booked(event, ["S2"], customer: "cus_2")
            // Made one second before the due time; the saga sees it now, as if during the grace.
            try await world.publish(try paid(onTime, reference: "pi_on_time", at: onTime.dueAt.addingTimeInterval(-1)))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(onTime.id.uuid) AND state = 'confirmed'", equals: 1)
            let poller = SagaDeadlinePoller(
                postgres: world.postgres, holds: SeatHoldStore(redis: world.redis), logger: TestEnvironment.logger,
                now: { unpaid.dueAt.addingTimeInterval(Self.grace + 1) })
            #expect(try await poller.expireDue() == 1)
            #expect(try await world.status(onTime.id) == "confirmed")
            #expect(try await world.status(unpaid.id) == "expired")
            // A payment for the expired booking is refunded; the booking stays expired.
            try await world.publish(try paid(unpaid, reference: "pi_too_late"))
            try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE event_type = 'refund.requested'", equals: 1)
            #expect(try await world.status(unpaid.id) == "expired")
        }
    }

    @Test("two pollers at once on 40 overdue bookings: each booking expires exactly once")
    func twoPollers() async throws {
        let harness = try await BookingHarness.make()
        let parts = harness.parts
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 40)
            var latest = Date.distantPast
            for index in 1...40 { latest = max(latest, try await client.booked(event, ["S\(index)"], customer: "cus_\(index)").dueAt) }
            let instant = latest.addingTimeInterval(Self.grace + 1)
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        var poller = SagaDeadlinePoller(
                            postgres: parts.app.postgres, holds: parts.holds, logger: TestEnvironment.logger, now: { instant })
                        poller.batchSize = 7
                        var total = 0
                        while true {
                            let expired = try await poller.expireDue()
                            total += expired
                            if expired == 0 { return total }
                        }
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(counts.reduce(0, +) == 40)
            #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'booking.expired'") == 40)
            #expect(try await postgres.count("SELECT count(DISTINCT aggregate_id) FROM messaging.outbox WHERE event_type = 'booking.expired'") == 40)
            #expect(try await postgres.count("SELECT count(*) FROM booking.bookings WHERE status = 'expired'") == 40)
        }
    }
}
