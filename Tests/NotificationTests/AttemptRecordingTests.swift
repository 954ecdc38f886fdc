import Foundation
import Postgres
import SharedModel
import Testing

@testable import Notification

/// `DeliveryRepository.record` writes a success or a retry as one statement, many to a round trip.
/// These hold that statement to the guards of the step-by-step path: the delivery changes only under
/// this worker's lease, the endpoint's health only when the delivery changed, and a delivery an
/// operator deleted meanwhile gets nothing recorded.
@Suite("Recording attempts in one statement keeps the lease, health and deletion guards", .serialized)
struct AttemptRecordingTests {
    private static let limits = DeliveryRepository.ClaimLimits(count: 10, perEndpoint: 4, lease: .seconds(60), orderWait: .seconds(3_600))

    @Test("stale lease: the attempt only; live lease: delivery and endpoint too; retry: endpoint failing; deleted: nothing")
    func guards() async throws {
        let harness = try await NotificationHarness.make()
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "http://127.0.0.1:9/hook")
            let repository = DeliveryRepository(postgres: harness.postgres)
            let clock = harness.clock.wallClock

            // A success, first under a lease that is no longer this worker's, then under the live one.
            let first = try await claimOne(harness, repository)
            let failingSince = harness.clock.now.addingTimeInterval(-600)
            try await harness.postgres.query("UPDATE notification.endpoints SET failing_since = \(failingSince) WHERE id = \(endpoint.id)")
            let stale = ClaimedDelivery(
                id: first.id, endpointID: first.endpointID, eventID: first.eventID, eventType: first.eventType, attempt: first.attempt,
                body: first.body, leaseUntil: first.leaseUntil.addingTimeInterval(1), outOfOrder: false, reclaimed: false)
            try await repository.record([success(stale, at: harness.clock.now)], clock: clock)
            #expect(try await harness.count("SELECT count(*) FROM notification.attempts WHERE delivery_id = \(first.id)") == 1)
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM notification.deliveries WHERE id = \(first.id) AND status = 'pending' AND lease_until = \(first.leaseUntil)"
                ) == 1, "a stale lease leaves the delivery as it was")
            #expect(
                try await harness.count("SELECT count(*) FROM notification.endpoints WHERE id = \(endpoint.id) AND failing_since IS NOT NULL") == 1,
                "and the endpoint's health too")

            try await repository.record([success(first, at: harness.clock.now)], clock: clock)
            #expect(try await harness.count("SELECT count(*) FROM notification.attempts WHERE delivery_id = \(first.id)") == 2)
            #expect(
                try await harness.count(
                    """
                    SELECT count(*) FROM notification.deliveries
                    WHERE id = \(first.id) AND status = 'succeeded' AND lease_until IS NULL AND next_attempt_at IS NULL
                      AND completed_at IS NOT NULL AND attempt_count = 1 AND last_status_code = 204 AND last_error IS NULL
                    """) == 1)
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints WHERE id = \(endpoint.id) AND failing_since IS NULL") == 1)

            // A retry marks the endpoint failing since the attempt, and the delivery waits for its next try.
            let second = try await claimOne(harness, repository)
            let now = harness.clock.now
            let retryAt = now.addingTimeInterval(5)
            let retry = AttemptRecord(
                delivery: second, attemptedAt: now, latency: .milliseconds(12), outcome: .refused(status: 500, retryAfter: nil),
                responseExcerpt: "boom", decision: .init(next: .retry(at: retryAt), endpoint: .failing(since: now)))
            try await repository.record([retry], clock: clock)
            #expect(
                try await harness.count(
                    """
                    SELECT count(*) FROM notification.deliveries
                    WHERE id = \(second.id) AND status = 'pending' AND lease_until IS NULL AND next_attempt_at = \(retryAt)
                      AND attempt_count = 1 AND last_status_code = 500 AND last_error = 'the endpoint answered 500'
                    """) == 1)
            #expect(
                try await harness.count(
                    """
                    SELECT count(*) FROM notification.attempts
                    WHERE delivery_id = \(second.id) AND status_code = 500 AND latency_ms = 12 AND response_excerpt = 'boom'
                    """) == 1)
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints WHERE id = \(endpoint.id) AND failing_since = \(now)") == 1)

            // A delivery deleted while its attempt was out: nothing recorded, no error, the endpoint untouched.
            let third = try await claimOne(harness, repository)
            try await harness.postgres.query("DELETE FROM notification.deliveries WHERE id = \(third.id)")
            try await repository.record([success(third, at: harness.clock.now)], clock: clock)
            #expect(try await harness.count("SELECT count(*) FROM notification.attempts WHERE delivery_id = \(third.id)") == 0)
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints WHERE id = \(endpoint.id) AND failing_since = \(now)") == 1)
        }
    }

    /// Fans out one event to the endpoint and claims its delivery.
    private func claimOne(_ harness: NotificationHarness, _ repository: DeliveryRepository) async throws -> ClaimedDelivery {
        let occurred = harness.clock.now.addingTimeInterval(1)
        harness.clock.advance(by: .seconds(1))
        try await harness.fanOut([try NotificationHarness.event(occurredAt: occurred)])
        let claimed = try await repository.claim(Self.limits, now: harness.clock.now).deliveries
        try #require(claimed.count == 1)
        return claimed[0]
    }

    private func success(_ delivery: ClaimedDelivery, at now: Date) -> AttemptRecord {
        AttemptRecord(
            delivery: delivery, attemptedAt: now, latency: .milliseconds(3), outcome: .delivered(status: 204), responseExcerpt: nil,
            decision: .init(next: .succeeded, endpoint: .healthy))
    }
}
