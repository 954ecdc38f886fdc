import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

/// Redis losing recent stream entries (failover to a lagging replica, AOF `everysec`, a restored
/// snapshot) keeps its epoch key, so the relay does not republish: the payments service's events are
/// in its outbox, published, and never reach the saga coordinator. Here they are written to the
/// outbox as the payments service writes them and marked published, but never added to the stream.
@Suite("Payment events Redis lost: the booking still confirms, or is refunded with a review, never silently expires")
struct LostPaymentEventTests {
    /// `event` in the payments service's outbox, published `ago` and gone from Redis.
    static func lost(_ event: some DomainEvent, ago: TimeInterval, postgres: PostgresClient) async throws -> EventEnvelope {
        try await postgres.withTransaction { transaction in
            let envelope = try Outbox.append(event, producer: .paymentsWebhook, correlationID: "lost", occurredAt: Date(), in: transaction)
            try transaction.query(
                "UPDATE messaging.outbox SET published_at = \(Date().addingTimeInterval(-ago)) WHERE event_id = \(envelope.id.uuid)")
            return envelope
        }
    }

    @Test("the deadline poller applies a lost on-time payment before expiring: confirmed; a lost late one: refunded with a review, expired")
    func pollerAppliesLostPayments() async throws {
        let harness = try await BookingHarness.make()
        let parts = harness.parts
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 3)
            let onTime = try await client.booked(event, ["S1"], customer: "cus_1")
            let late = try await client.booked(event, ["S2"], customer: "cus_2")
            let unpaid = try await client.booked(event, ["S3"], customer: "cus_3")
            let envelope = try await Self.lost(
                try paid(onTime, reference: "pi_lost", at: onTime.dueAt.addingTimeInterval(-60)), ago: 600, postgres: postgres)
            _ = try await Self.lost(try paid(late, reference: "pi_late", at: late.dueAt.addingTimeInterval(30)), ago: 600, postgres: postgres)

            let after = [onTime, late, unpaid].map(\.dueAt).max()!.addingTimeInterval(SagaDeadlineTests.grace + 1)
            let poller = SagaDeadlinePoller(postgres: parts.app.postgres, holds: parts.holds, logger: TestEnvironment.logger, now: { after })
            #expect(try await poller.expireDue() == 3)
            #expect(
                try await postgres.count("SELECT count(*) FROM booking.sagas WHERE booking_id = \(onTime.id.uuid) AND state = 'confirmed'") == 1)
            #expect(try await postgres.count("SELECT count(*) FROM booking.sagas WHERE booking_id = \(late.id.uuid) AND state = 'expired'") == 1)
            #expect(try await postgres.count("SELECT count(*) FROM booking.sagas WHERE booking_id = \(unpaid.id.uuid) AND state = 'expired'") == 1)
            let refunds = try await postgres.query(
                "SELECT envelope::text FROM messaging.outbox WHERE event_type = 'refund.requested'"
            ).map { try EventEnvelope(jsonData: Data(try $0.decode(String.self, at: 0).utf8)).decode(RefundRequested.self) }
            #expect(refunds.count == 1 && refunds.first?.providerRef == "pi_late" && refunds.first?.reason == .latePayment)
            #expect(try await postgres.count("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'") == 1)
            #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'booking.expired'") == 2)
            #expect(
                try await postgres.count(
                    "SELECT count(*) FROM messaging.inbox WHERE consumer = 'booking-saga' AND event_id = \(envelope.id.uuid)") == 1)
            // Applied once: the coordinator receiving it later changes nothing.
            #expect(try await poller.expireDue() == 0)
        }
    }

    @Test("the periodic reconciliation applies a payment lost from the stream once; not one still within its grace, nor a dead-lettered one")
    func reconcilerAppliesLostPayments() async throws {
        let harness = try await BookingHarness.make()
        let parts = harness.parts
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 3)
            let lost = try await client.booked(event, ["S1"], customer: "cus_1")
            let recent = try await client.booked(event, ["S2"], customer: "cus_2")
            let parked = try await client.booked(event, ["S3"], customer: "cus_3")
            _ = try await Self.lost(try paid(lost, reference: "pi_lost"), ago: 600, postgres: postgres)
            _ = try await Self.lost(try paid(recent, reference: "pi_recent"), ago: 10, postgres: postgres)
            let deadLettered = try await Self.lost(try paid(parked, reference: "pi_parked"), ago: 600, postgres: postgres)
            _ = try await postgres.withTransaction { transaction in
                try DeadLetterStore.record(
                    kind: .failure, stream: Streams.payments, consumer: SagaCoordinator.group, envelope: deadLettered, error: "kept failing",
                    attempts: 8, firstFailedAt: Date(), in: transaction)
            }
            let reconciler = parts.sagaReconciler(logger: TestEnvironment.logger)
            #expect(try await reconciler.reconcile() == 1)
            #expect(try await postgres.count("SELECT count(*) FROM booking.sagas WHERE booking_id = \(lost.id.uuid) AND state = 'confirmed'") == 1)
            #expect(try await postgres.count("SELECT count(*) FROM booking.sagas WHERE state = 'awaiting_payment'") == 2)
            #expect(try await reconciler.reconcile() == 0)
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains("outbox_reconciled_total"))
        }
    }
}

@Suite("Booking retention: step logs of finished sagas past SAGA_STEP_RETENTION")
struct BookingRetentionTests {
    @Test("steps of sagas finished before the retention are deleted; running sagas' and recent ones' stay, and so do the sagas")
    func sagaSteps() async throws {
        let harness = try await BookingHarness.make(settings: ["SAGA_STEP_RETENTION": "48h"])
        let parts = harness.parts
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 3)
            let old = try await client.booked(event, ["S1"], customer: "cus_1")
            let recent = try await client.booked(event, ["S2"], customer: "cus_2")
            let running = try await client.booked(event, ["S3"], customer: "cus_3")
            for booking in [old, recent] {
                #expect(
                    try await client.call(
                        .post, "/v1/bookings/\(booking.id)/cancel", json: ["customer_id": .string(booking.id == old.id ? "cus_1" : "cus_2")]
                    ).status == .ok)
            }
            _ = try await postgres.query(
                "UPDATE booking.sagas SET updated_at = now() - interval '3 days' WHERE booking_id = ANY(\([old.id.uuid, running.id.uuid])::uuid[])")
            let sweeper = RetentionSweeper(postgres: postgres, rules: parts.retentionRules, logger: TestEnvironment.logger)
            let deleted = try await sweeper.sweep()
            #expect(deleted["booking.saga_steps"] == 2, "the old cancelled saga's two steps")
            #expect(try await postgres.count("SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(old.id.uuid)") == 0)
            #expect(try await postgres.count("SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(recent.id.uuid)") == 2)
            #expect(try await postgres.count("SELECT count(*) FROM booking.saga_steps WHERE booking_id = \(running.id.uuid)") == 1)
            #expect(try await postgres.count("SELECT count(*) FROM booking.sagas") == 3)
        }
    }
}
