import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Saga refunds: only the refund the saga asked for, for its amount, completes it")
struct RefundMatchingTests {
    @Test("a 1-unit refund made by hand at the provider, and a duplicate payment's compensation refund, leave the cancellation waiting")
    func foreignRefundsLeaveTheSagaWhereItWas() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 1)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            try await world.publish(try paid(booking, reference: "pi_own"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'confirmed'", equals: 1)

            // While confirmed: a 1-unit refund nobody here asked for moves nothing and asks for a review.
            try await world.publish(RefundSucceeded(refundID: nil, bookingID: booking.id, providerRef: "pi_own", amount: cents(1, booking)))
            try await world.waitUntil("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'", equals: 1)
            #expect(try await world.status(booking.id) == "confirmed")

            // A second payment of the same booking is refunded as a compensation.
            try await world.publish(try paid(booking, reference: "pi_twice", event: "evt_twice"))
            try await world.waitUntil("SELECT count(*) FROM booking.refund_requests WHERE purpose = 'compensation'", equals: 1)

            // The customer cancels in time: the saga asks for its own refund.
            let cancelled = try await client.call(.post, "/v1/bookings/\(booking.id)/cancel", json: ["customer_id": "cus_1"])
            #expect(cancelled.status == .ok && cancelled["status"] == "refund_pending")
            let requests = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            let compensation = try #require(requests.first { $0.providerRef == "pi_twice" })
            let own = try #require(requests.first { $0.providerRef == "pi_own" })
            #expect(own.reason == .customerCancellation && own.amount == booking.amount)

            // Neither the 1-unit refund (again, now during the cancellation) nor the compensation's refund completes it.
            try await world.publish(RefundSucceeded(refundID: nil, bookingID: booking.id, providerRef: "pi_own", amount: cents(1, booking)))
            try await world.publish(
                RefundSucceeded(
                    refundID: compensation.refundID, bookingID: booking.id, providerRef: "pi_twice", amount: compensation.amount,
                    providerRefundRef: "re_twice"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.refund_requests WHERE refund_id = \(compensation.refundID.uuid) AND status = 'succeeded' AND provider_refund_ref = 're_twice'",
                equals: 1)
            try await world.waitUntil("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'", equals: 3)
            #expect(try await world.status(booking.id) == "refund_pending")
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'refund_pending'") == 1)

            // The saga's own refund, for another amount than asked: a review, still waiting.
            try await world.publish(
                RefundSucceeded(
                    refundID: own.refundID, bookingID: booking.id, providerRef: "pi_own", amount: cents(booking.amount.amount - 1, booking)))
            try await world.waitUntil("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'", equals: 4)
            #expect(try await world.status(booking.id) == "refund_pending")

            // Its own refund for the amount asked: refunded, once.
            let completed = RefundSucceeded(refundID: own.refundID, bookingID: booking.id, providerRef: "pi_own", amount: own.amount)
            try await world.publish(completed)
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(booking.id.uuid) AND state = 'refunded'", equals: 1)
            try await world.publish(completed)
            try await world.waitUntil(
                "SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(booking.id.uuid) AND step = 'refund_succeeded' AND outcome = 'skipped'",
                equals: 1)
            #expect(try await world.postgres.count("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'") == 4)
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.refund_requests WHERE status = 'succeeded'") == 2)
        }
    }

    @Test("a refused refund of an attempt an operator's resume replaced does not fail the resumed attempt")
    func staleFailureAfterResume() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 1)
            let booking = try await client.booked(event, ["S1"], customer: "cus_1")
            try await world.publish(try paid(booking, reference: "pi_s"))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE state = 'confirmed'", equals: 1)
            _ = try await client.call(.post, "/v1/bookings/\(booking.id)/cancel", json: ["customer_id": "cus_1"])
            let first = try #require(try await world.outbox(type: "refund.requested").first?.decode(RefundRequested.self))
            let failure = RefundFailed(refundID: first.refundID, bookingID: booking.id, providerRef: "pi_s", amount: first.amount, error: "timeout")
            try await world.publish(failure)
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE state = 'compensation_failed'", equals: 1)
            _ = try await world.operations.resume(booking.id, operatorName: "ops")
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'refund_pending'") == 1)
            // The first attempt's failure reported again (another event id): the resumed attempt keeps waiting.
            try await world.publish(failure)
            try await world.waitUntil("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'", equals: 1)
            #expect(try await world.postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'refund_pending'") == 1)
        }
    }
}

private func cents(_ amount: Int64, _ booking: Booked) -> Money {
    Money(amount: amount, currency: booking.amount.currency)
}
