import Foundation
import Redis
import SharedModel
import Testing

@testable import Booking

/// A conversion of a hold this instance placed takes its seats from memory instead of the hold's record
/// (one Redis round trip fewer), and the memory decides nothing: Redis still answers whether the hold is
/// live and whose it is, and another instance reads the record.
@Suite("The seats of holds placed here")
struct PlacedHoldSeatsTests {
    @Test("two generations: a hold is remembered for at least capacity/2 later holds, never more than capacity")
    func bounded() throws {
        let memory = PlacedHoldSeats(capacity: 4)
        let holds = (0..<6).map { _ in HoldID() }
        for (index, hold) in holds.prefix(2).enumerated() { memory.remember(hold, seats: [try SeatID("S\(index)")]) }
        #expect(memory.seats(of: holds[0]) == [try SeatID("S0")])
        #expect(memory.seats(of: holds[1]) == [try SeatID("S1")])
        memory.remember(holds[2], seats: [try SeatID("S2")])  // the newer generation was full: it becomes the older
        memory.remember(holds[3], seats: [try SeatID("S3")])
        #expect(holds.prefix(4).allSatisfy { memory.seats(of: $0) != nil })
        #expect(memory.count == 4)
        memory.remember(holds[4], seats: [try SeatID("S4")])  // the first two go
        #expect(memory.seats(of: holds[0]) == nil && memory.seats(of: holds[1]) == nil)
        #expect(memory.seats(of: holds[2]) == [try SeatID("S2")])
        #expect(memory.seats(of: holds[4]) == [try SeatID("S4")])
        #expect(memory.count == 3)
        #expect(memory.seats(of: holds[5]) == nil)

        let none = PlacedHoldSeats(capacity: 0)
        none.remember(holds[0], seats: [try SeatID("S0")])
        #expect(none.seats(of: holds[0]) == nil && none.count == 0)
    }

    @Test("a hold script's keys are the single-key functions' keys, in the scripts' order, and the seat keys a hold writes")
    func scriptKeys() async throws {
        let harness = try await BookingHarness.make()
        let store = harness.parts.holds
        try await harness.run { client in
            let event = try await client.createEvent(seats: 4)
            let token = try #require(try await client.hold(event, ["S1", "S2"], customer: "c1")["hold_id"]?.stringValue)
            let reference = try #require(HoldReference(token: token))
            let seats = [try SeatID("S1"), try SeatID("S2")]
            let strings = { (keys: [RedisArgument]) in keys.map { String(decoding: $0.bytes, as: UTF8.self) } }
            let single = [store.holdKey(reference)] + seats.map { store.seatKey(reference.eventID, $0) }
            #expect(strings(store.scriptKeys(reference, seats: seats, withCache: true)) == [store.unavailableKey(reference.eventID)] + single)
            #expect(strings(store.scriptKeys(reference, seats: seats, withCache: false)) == single)
            #expect(strings(store.scriptKeys(reference, seats: [], withCache: false)) == [store.holdKey(reference)])
            #expect(single[1] == "booking:{event:\(event)}:seat:S1")
            for key in seats.map({ store.seatKey(reference.eventID, $0) }) {
                #expect(try await store.redis.send("GET", RedisArgument(key)).string == reference.holdID.description)
            }
            #expect(try await store.redis.send("HGET", RedisArgument(store.holdKey(reference)), "customer").string == "c1")
        }
    }

    @Test("a hold placed here converts without reading its record; one placed elsewhere reads it; neither outlives Redis")
    func conversions() async throws {
        let harness = try await BookingHarness.make()
        let holds = harness.parts.holds
        let postgres = harness.postgres
        let redis = holds.redis
        try await harness.run { client in
            let event = try await client.createEvent(seats: 12)
            let eventID = EventID(try #require(UUID(uuidString: event)))
            _ = try await client.holdAndBook(event, ["S12"], customer: "warm-up")  // loads the scripts

            // Placed here: prepare, then the conversion and the reservation together (2 round trips).
            let placed = try #require(try await client.hold(event, ["S1", "S2"], customer: "c1")["hold_id"]?.stringValue)
            let before = redis.sharedConnectionStatistics
            let booked = try await client.book(placed, customer: "c1")
            let after = redis.sharedConnectionStatistics
            #expect(booked.status == .created)
            #expect(booked.seatIDs == ["S1", "S2"])
            #expect(after.commands - before.commands == 3, "EVALSHA prepare, EVALSHA convert, EVALSHA reservation")
            #expect(after.roundTrips - before.roundTrips == 2)

            // Placed by another instance (a store of its own on the same Redis): its record is read first.
            let foreign = HoldReference(eventID: eventID)
            let outcome = try await SeatHoldStore(redis: redis).place(
                foreign, seats: [try SeatID("S3"), try SeatID("S4")], customer: try CustomerID("c2"), ttl: .seconds(60),
                expiresAt: Date().addingTimeInterval(60))
            #expect(outcome == .held)
            #expect(holds.placedSeats.seats(of: foreign.holdID) == nil)
            let beforeForeign = redis.sharedConnectionStatistics
            let bookedForeign = try await client.book(foreign.token, customer: "c2")
            #expect(bookedForeign.status == .created)
            #expect(bookedForeign.seatIDs == ["S3", "S4"])
            #expect(redis.sharedConnectionStatistics.commands - beforeForeign.commands == 4, "HGETALL, then the three scripts")

            // Remembered, but someone else's: Redis says so.
            let owned = try #require(try await client.hold(event, ["S5"], customer: "c3")["hold_id"]?.stringValue)
            #expect(try await client.book(owned, customer: "intruder").errorCode == "hold_not_owned")

            // Remembered, but gone from Redis (expired, released): not bookable.
            let gone = try #require(try await client.hold(event, ["S6", "S7"], customer: "c4")["hold_id"]?.stringValue)
            let reference = try #require(HoldReference(token: gone))
            #expect(holds.placedSeats.seats(of: reference.holdID) == [try SeatID("S6"), try SeatID("S7")])
            _ = try await redis.send("DEL", RedisArgument(holds.holdKey(reference)))
            #expect(try await client.book(gone, customer: "c4").errorCode == "hold_expired")
            #expect(try await postgres.count("SELECT count(*) FROM booking.bookings WHERE hold_id = \(reference.holdID.uuid)") == 0)
        }
    }
}
