import Foundation
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

/// When the relay polls: an append in its own process wakes an idle relay at once; a busy relay polls
/// at its interval whatever is appended meanwhile.
@Suite("Outbox relay polling")
struct RelayPollingTests {
    /// Appends one event in a transaction of its own and returns its outbox position.
    private func appendOne(_ world: MessagingHarness) async throws -> Int64 {
        let envelope = try await world.postgres.withTransaction { transaction in
            try Outbox.append(testEvent(), producer: world.producer, correlationID: "polling", occurredAt: Date(), in: transaction)
        }
        return try await world.postgres.query("SELECT position FROM messaging.outbox WHERE event_id = \(envelope.id.uuid)")[0]
            .decode(Int64.self, at: 0)
    }

    private func published(_ world: MessagingHarness, _ positions: [Int64]) async throws -> Int {
        try await world.scalar("SELECT count(*)::int FROM messaging.outbox WHERE published_at IS NOT NULL AND position = ANY(\(positions))")
    }

    @Test("an idle relay publishes an append of its own process at once, not at its next idle poll a minute later")
    func idleRelayWakesAtAppend() async throws {
        let world = try await MessagingHarness.make()
        let relay = Task {
            try await world.relay(pollInterval: .milliseconds(20), idleAfter: .milliseconds(50), idlePollInterval: .seconds(60)).run()
        }
        // Leading, and idle: its first poll found nothing and more than `idleAfter` passed.
        _ = try await world.waitUntil(
            """
            SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, equals: 1)
        try await Task.sleep(for: .milliseconds(500))
        let position = try await appendOne(world)
        #expect(
            try await world.waitUntil("SELECT count(*)::int FROM messaging.outbox WHERE published_at IS NOT NULL", equals: 1, timeout: .seconds(10))
                == 1)
        #expect(try await published(world, [position]) == 1)
        await world.stop(relay)
    }

    @Test("a busy relay does not poll at every append: appends between two polls wait for the next one, then go out together")
    func busyRelayKeepsItsInterval() async throws {
        let world = try await MessagingHarness.make()
        let relay = Task { try await world.relay(pollInterval: .seconds(2), idleAfter: .seconds(60)).run() }
        // The first append is published at a poll; the relay then sleeps `pollInterval` from about now.
        let first = try await appendOne(world)
        #expect(
            try await world.waitUntil("SELECT count(*)::int FROM messaging.outbox WHERE published_at IS NOT NULL", equals: 1, timeout: .seconds(10))
                == 1)
        #expect(try await published(world, [first]) == 1)
        // The second append's commit comes before the third's ring: a relay woken by that ring would
        // find the second committed and publish it at once.
        let second = try await appendOne(world)
        let third = try await appendOne(world)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await published(world, [second, third]) == 0)
        #expect(
            try await world.waitUntil("SELECT count(*)::int FROM messaging.outbox WHERE published_at IS NOT NULL", equals: 3, timeout: .seconds(10))
                == 3)
        let times = try await world.scalar(
            "SELECT count(DISTINCT published_at)::int FROM messaging.outbox WHERE position = ANY(\([second, third]))")
        #expect(times == 1)
        await world.stop(relay)
    }
}
