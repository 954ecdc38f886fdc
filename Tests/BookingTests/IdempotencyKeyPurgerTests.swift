import Foundation
import Postgres
import TestSupport
import Testing

@testable import Booking

@Suite("Idempotency keys expire")
struct IdempotencyKeyPurgerTests {
    @Test("The purger deletes exactly the keys expired at its clock's now, in batches")
    func purgesExpiredKeys() async throws {
        let harness = try await BookingHarness.make()
        let postgres = harness.postgres
        await harness.shutdown()
        let now = Date()
        // 25 keys expired a minute ago, 5 that expire in an hour.
        for index in 0..<30 {
            let expiresAt = now.addingTimeInterval(index < 25 ? -60 : 3600)
            let key = "key-\(index)", createdAt = now.addingTimeInterval(-86_400)
            try await postgres.query(
                """
                INSERT INTO booking.idempotency_keys (client, scope, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES ('key_test', 'POST /v1/bookings', \(key), '\\x00'::bytea, 201, '\\x7b7d'::bytea, \(createdAt), \(expiresAt))
                """)
        }
        let purger = IdempotencyKeyPurger(postgres: postgres, logger: TestEnvironment.logger, batchSize: 10, clock: .fixed(now))
        #expect(try await purger.purge() == 25)
        #expect(try await postgres.count("SELECT count(*) FROM booking.idempotency_keys") == 5)
        #expect(try await postgres.count("SELECT count(*) FROM booking.idempotency_keys WHERE expires_at <= \(now)") == 0)
        #expect(try await purger.purge() == 0)
    }

    @Test("An expired key is forgotten: reusing it starts a new request instead of replaying or refusing")
    func expiredKeyIsReusable() async throws {
        let harness = try await BookingHarness.make()
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 2)
            let first = try #require(try await client.hold(event, ["S1"], customer: "olga")["hold_id"]?.stringValue)
            #expect(try await client.book(first, customer: "olga", key: "reused").status == .created)
            try await postgres.query("UPDATE booking.idempotency_keys SET expires_at = now() - interval '1 second'")
            let second = try #require(try await client.hold(event, ["S2"], customer: "olga")["hold_id"]?.stringValue)
            let again = try await client.book(second, customer: "olga", key: "reused")
            #expect(again.status == .created)
            #expect(again.seatIDs == ["S2"])
        }
        #expect(try await postgres.count("SELECT count(*) FROM booking.bookings") == 2)
        #expect(try await postgres.count("SELECT count(*) FROM booking.idempotency_keys WHERE expires_at > now()") == 1)
    }
}
