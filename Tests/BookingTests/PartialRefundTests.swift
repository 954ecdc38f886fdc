import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Partial refunds: part of a confirmed booking's payment, never more than was paid")
struct PartialRefundTests {
    private static func refund(
        _ client: any TestClientProtocol, _ booking: BookingID, amount: Int64, note: String = "a goodwill gesture",
        key: String = UUID().uuidString, as caller: Caller = .admin
    ) async throws -> Answer {
        try await client.call(
            .post, "/v1/bookings/\(booking)/refunds", as: caller, json: ["amount": .integer(amount), "note": .string(note)],
            headers: [.idempotencyKey: key, .operatorName: "erin"])
    }

    private static func confirmed(_ client: any TestClientProtocol, _ world: SagaWorld, seat: String, event: String) async throws -> Booked {
        let booked = try await client.booked(event, [seat], customer: "cus_\(seat)")
        try await world.publish(try paid(booked, reference: "pi_\(booked.id)"))
        try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(booked.id.uuid) AND state = 'confirmed'", equals: 1)
        return booked
    }

    private static func requested(_ world: SagaWorld, _ booking: BookingID) async throws -> Int {
        try await world.postgres.count(
            """
            SELECT COALESCE(sum(amount), 0)::int8 FROM booking.refund_requests
            WHERE booking_id = \(booking.uuid) AND purpose = 'partial' AND status <> 'failed'
            """)
    }

    @Test(
        "two concurrent refunds that together exceed the payment: one 202, the other 422 naming what is left; ten at once: exactly as many as fit"
    )
    func concurrentRefundsNeverExceedThePayment() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 3)
            // S1 costs 1,001.
            let first = try await Self.confirmed(client, world, seat: "S1", event: event)
            let pair = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0..<2 { group.addTask { try await Self.refund(client, first.id, amount: 600) } }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(pair.map(\.status.code).sorted() == [202, 422])
            let refused = try #require(pair.first { $0.status == .unprocessableContent })
            #expect(refused.errorCode == "refund_exceeds_payment" && refused.json?["error"]?["details"]?["refundable"] == 401)
            #expect(try await Self.requested(world, first.id) == 600)

            // S2 costs 1,002: ten refunds of 150 at once, six fit (900).
            let second = try await Self.confirmed(client, world, seat: "S2", event: event)
            let ten = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0..<10 { group.addTask { try await Self.refund(client, second.id, amount: 150) } }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(ten.filter { $0.status == .accepted }.count == 6)
            #expect(ten.filter { $0.errorCode == "refund_exceeds_payment" }.count == 4)
            #expect(try await Self.requested(world, second.id) == 900)
            let events = try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }
            #expect(events.filter { $0.reason == .partialRefund }.count == 7)
            #expect(events.allSatisfy { $0.reason == .partialRefund && $0.idempotencyKey == "refund-partial-\($0.refundID)" })
        }
    }

    @Test(
        "a refund shows on the booking once it succeeds, the booking stays confirmed; a later cancellation refunds only the rest; replays, 409, 404, 400, 403 and the audit row"
    )
    func refundThenCancel() async throws {
        try await SagaWorld.run { client, world in
            let event = try await client.createEvent(seats: 2)
            let booked = try await Self.confirmed(client, world, seat: "S1", event: event)
            let key = UUID().uuidString
            let accepted = try await Self.refund(client, booked.id, amount: 300, note: " the show started late ", key: key)
            #expect(accepted.status == .accepted && accepted["amount"] == 300 && accepted["currency"] == "EUR")
            #expect(accepted["status"] == "requested" && accepted["reason"] == "partial_refund" && accepted["note"] == "the show started late")
            // The same request again is the same answer; the key with another body is 422.
            let replay = try await Self.refund(client, booked.id, amount: 300, note: "the show started late", key: key)
            #expect(replay.status == .accepted && replay["refund_id"] == accepted["refund_id"])
            #expect(replay.headers[.idempotentReplayed] == "true")
            #expect(try await Self.refund(client, booked.id, amount: 301, key: key).errorCode == "idempotency_key_reused")
            #expect(try await world.outbox(type: "refund.requested").count == 1)

            let refundID = try #require(accepted["refund_id"]?.stringValue.flatMap(UUID.init(uuidString:)))
            #expect(try await client.call(.get, "/v1/bookings/\(booked.id)")["refunded_amount"] == 0)
            try await world.publish(
                RefundSucceeded(
                    refundID: RefundID(refundID), bookingID: booked.id, providerRef: "pi_\(booked.id)", amount: Money(amount: 300, currency: .eur)))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.refund_requests WHERE refund_id = \(refundID) AND status = 'succeeded'", equals: 1)
            let shown = try await client.call(.get, "/v1/bookings/\(booked.id)")
            #expect(shown["refunded_amount"] == 300 && shown["status"] == "confirmed" && shown["saga_state"] == "confirmed")
            #expect(
                try await world.postgres.count(
                    "SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(booked.id.uuid) AND step = 'partially_refunded'") == 1)

            // The admin cancels (30 days before the event: refundable): the refund is the rest, 1,001 - 300.
            let cancelled = try await client.call(.post, "/v1/bookings/\(booked.id)/cancel", as: .admin, json: [:])
            #expect(cancelled["status"] == "refund_pending")
            let rest = try #require(
                try await world.outbox(type: "refund.requested").map { try $0.decode(RefundRequested.self) }.first { $0.reason == .adminCancellation }
            )
            #expect(rest.amount == Money(amount: 701, currency: .eur))
            let cancellation = try #require(
                try await world.outbox(type: "booking.cancelled").map { try $0.decode(BookingCancelled.self) }.first { $0.bookingID == booked.id })
            #expect(cancellation.refundDue == Money(amount: 701, currency: .eur))
            try await world.publish(
                RefundSucceeded(refundID: rest.refundID, bookingID: booked.id, providerRef: "pi_\(booked.id)", amount: rest.amount))
            try await world.waitUntil("SELECT count(*) FROM booking.sagas WHERE booking_id = \(booked.id.uuid) AND state = 'refunded'", equals: 1)
            #expect(try await client.call(.get, "/v1/bookings/\(booked.id)")["refunded_amount"] == 1001)

            // No longer confirmed: 409; unknown: 404; no key or a bad amount: 400/422; a client key: 403.
            let late = try await Self.refund(client, booked.id, amount: 1)
            #expect(late.status == .conflict && late.errorCode == "not_refundable" && late.json?["error"]?["details"]?["saga_state"] == "refunded")
            #expect(try await Self.refund(client, BookingID(), amount: 1).status == .notFound)
            let pending = try await client.booked(event, ["S2"], customer: "cus_2")
            #expect(try await Self.refund(client, pending.id, amount: 1).errorCode == "not_refundable")
            #expect(try await Self.refund(client, pending.id, amount: 0).status == .unprocessableContent)
            #expect(try await Self.refund(client, pending.id, amount: 5, note: "").status == .unprocessableContent)
            let keyless = try await client.call(
                .post, "/v1/bookings/\(pending.id)/refunds", as: .admin, json: ["amount": 5, "note": "x"])
            #expect(keyless.status == .badRequest)
            #expect(try await Self.refund(client, pending.id, amount: 5, as: .client).status == .forbidden)
            let audit = try await world.postgres.query(
                """
                SELECT operator, outcome, http_status, details->>'amount' FROM platform.audit_log
                WHERE action = 'booking.partially_refunded' AND target_id = \(booked.id.description)
                """)
            #expect(audit.count == 1)
            #expect(try audit.first?.decode(String.self, at: 0) == "erin" && (try audit.first?.decode(String?.self, at: 3)) == "300")
        }
    }
}
