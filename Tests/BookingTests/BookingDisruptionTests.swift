import Foundation
import HTTPTypes
import HummingbirdTesting
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Booking when Redis or Postgres fails")
struct BookingDisruptionTests {
    @Test("Redis flushed in the middle of booking flows: no booking is lost, booked seats never become holdable, the cache is rebuilt")
    func redisFlushedMidFlow() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let harness = try await BookingHarness.make(redisURL: servers.redisURL)
            let redis = harness.parts.holds.redis
            let store = harness.parts.holds
            let postgres = harness.postgres
            try await harness.run { client in
                let event = try await client.createEvent(seats: 60)
                let eventID = EventID(try #require(UUID(uuidString: event)))
                // 30 customers hold two seats each and book them, while Redis loses everything once.
                let bookings = try await withThrowingTaskGroup(of: String?.self) { group in
                    for index in 0..<30 {
                        group.addTask {
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                            let hold = try await client.hold(event, ["S\(2 * index + 1)", "S\(2 * index + 2)"], customer: "c\(index)")
                            guard hold.status == .created, let id = hold["hold_id"]?.stringValue else { return nil }
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                            let booked = try await client.book(id, customer: "c\(index)")
                            #expect(booked.status == .created || booked.errorCode == "hold_expired", "\(booked.status)")
                            return booked.status == .created ? booked["booking_id"]?.stringValue : nil
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(25))
                        _ = try await redis.send("FLUSHALL")
                        return nil
                    }
                    return try await group.reduce(into: [String]()) { if let id = $1 { $0.append(id) } }
                }
                #expect(!bookings.isEmpty)
                // Lose Redis once more after the flows, so the next hold must rebuild the cache from Postgres.
                _ = try await redis.send("FLUSHALL")
                var booked: [String] = []
                for id in bookings {
                    let read = try await client.call(.get, "/v1/bookings/\(id)")
                    #expect(read.status == .ok && read["status"]?.stringValue == "pending_payment")
                    booked += read.seatIDs
                }
                for seat in booked {
                    let thief = try await client.hold(event, [seat], customer: "thief")
                    #expect(thief.status == .conflict, "booked seat \(seat) became holdable")
                    #expect(thief.seatIDs == [seat])
                }
                let cache = try await redis.send("SMEMBERS", RedisArgument(store.unavailableKey(eventID)))
                let members = Set(cache.array?.compactMap(\.string) ?? [])
                #expect(members == Set(booked + [""]), "the rebuilt cache lists exactly the booked seats and its completeness mark")
                let states = try await seatStates(client, event)
                #expect(booked.allSatisfy { states[$0] == "held" })
                #expect(try await postgres.count("SELECT count(*) FROM booking.bookings") == bookings.count)
            }
        }
    }

    @Test("Postgres stopped between the hold and the conversion: 503, nothing half-done, the hold stays releasable")
    func postgresStoppedBeforeConversion() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let harness = try await BookingHarness.make(server: servers.databaseURL)
            let postgres = harness.postgres
            try await harness.run { client in
                let event = try await client.createEvent(seats: 3)
                let first = try #require(try await client.hold(event, ["S1", "S2"], customer: "kim")["hold_id"]?.stringValue)
                let second = try #require(try await client.hold(event, ["S3"], customer: "kim")["hold_id"]?.stringValue)
                try await servers.stopPostgres()
                let refused = try await client.book(first, customer: "kim", key: "retry-me")
                #expect(refused.status == .serviceUnavailable)
                #expect(refused.errorCode == "dependency_unavailable")
                #expect(try await client.book(second, customer: "kim").status == .serviceUnavailable)
                // Releasing needs only Redis.
                #expect(try await client.call(.delete, "/v1/holds/\(second)?customer_id=kim").status == .noContent)
                try await servers.startPostgres()
                // Nothing of the failed attempts was written, and the 503 was not remembered under the key.
                #expect(try await postgres.count("SELECT count(*) FROM booking.bookings") == 0)
                #expect(try await postgres.count("SELECT count(*) FROM booking.idempotency_keys") == 0)
                #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox") == 0)
                let retried = try await client.book(first, customer: "kim", key: "retry-me")
                #expect(retried.status == .created)
                #expect(try await client.hold(event, ["S3"], customer: "lee").status == .created)
            }
            #expect(try await harness.count("SELECT count(*) FROM booking.bookings") == 1)
        }
    }
}
