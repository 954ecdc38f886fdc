import Foundation
import HTTPTypes
import HummingbirdTesting
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Booking under concurrency: no double holds, no double bookings")
struct BookingConcurrencyTests {
    @Test("1,000 concurrent holds from 1,000 customers for the same 50 seats: no seat is ever held twice")
    func concurrentHolds() async throws {
        let harness = try await BookingHarness.make()
        let store = harness.parts.holds
        try await harness.run { client in
            let event = try await client.createEvent(seats: 50)
            var generator = SystemRandomNumberGenerator()
            let requests: [[String]] = (0..<1000).map { _ in
                Array((1...50).shuffled(using: &generator).prefix(Int.random(in: 1...4, using: &generator))).map { "S\($0)" }
            }
            let answers = try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
                for (index, seats) in requests.enumerated() {
                    group.addTask { (index, try await client.hold(event, seats, customer: "customer-\(index)")) }
                }
                return try await group.reduce(into: [(Int, Answer)]()) { $0.append($1) }
            }
            var owner: [String: String] = [:]
            var granted = 0
            for (index, answer) in answers {
                switch answer.status {
                case .created:
                    granted += 1
                    let hold = try #require(answer["hold_id"]?.stringValue)
                    #expect(Set(answer.seatIDs) == Set(requests[index]))
                    for seat in requests[index] {
                        #expect(owner[seat] == nil, "seat \(seat) granted to two holds")
                        owner[seat] = hold
                    }
                case .conflict:
                    // Exactly the unavailable seats are named, all of them among the requested ones.
                    #expect(answer.errorCode == "seats_unavailable")
                    #expect(!answer.seatIDs.isEmpty && Set(answer.seatIDs).isSubset(of: Set(requests[index])))
                default:
                    Issue.record("unexpected answer \(answer.status): \(String(decoding: answer.bytes, as: UTF8.self))")
                }
            }
            #expect(granted > 0)
            // Redis agrees: each granted seat's key carries the id of the one hold that was told it has it.
            let eventID = EventID(try #require(UUID(uuidString: event)))
            for (seat, hold) in owner {
                let reference = try #require(HoldReference(token: hold))
                let value = try await store.redis.send("GET", RedisArgument(store.seatKey(eventID, try SeatID(parsing: seat))))
                #expect(value.string == reference.holdID.description)
            }
            // Every seat not granted is still available in the seat map.
            let states = try await seatStates(client, event)
            for seat in (1...50).map({ "S\($0)" }) {
                #expect(states[seat] == (owner[seat] == nil ? "available" : "held"), "\(seat)")
            }
        }
    }

    @Test("500 concurrent conversions on overlapping, forged and expired holds: only 201, 409, 422, and no seat booked twice")
    func conversionRace() async throws {
        let harness = try await BookingHarness.make()
        let store = harness.parts.holds
        try await harness.run { client in
            let event = try await client.createEvent(seats: 240)
            let eventID = EventID(try #require(UUID(uuidString: event)))
            func hold(_ index: Int) async throws -> (hold: String, customer: String) {
                let customer = "customer-\(index)"
                let answer = try await client.hold(event, ["S\(2 * index + 1)", "S\(2 * index + 2)"], customer: customer)
                return (try #require(answer["hold_id"]?.stringValue), customer)
            }
            var live: [(hold: String, customer: String)] = []
            for index in 0..<80 { live.append(try await hold(index)) }
            var expired: [(hold: String, customer: String)] = []
            for index in 80..<110 { expired.append(try await hold(index)) }
            // Let the second group expire: their keys vanish as a TTL would make them.
            for (token, _) in expired {
                let reference = try #require(HoldReference(token: token))
                let seats = try #require(try await store.hold(reference)).seatIDs
                for key in [store.holdKey(reference)] + seats.map({ store.seatKey(eventID, $0) }) {
                    _ = try await store.redis.send("PEXPIRE", RedisArgument(key), "1")
                }
            }
            try await Task.sleep(for: .milliseconds(20))

            var requests: [(hold: String, customer: String)] = []
            for entry in live {
                requests += Array(repeating: entry, count: 3)  // the same hold converted three times at once
                requests.append((entry.hold, "intruder"))  // someone else's hold
            }
            for entry in expired { requests += [entry, entry] }
            for index in 0..<60 { requests.append((HoldReference(eventID: eventID).token, "forger-\(index)")) }  // well-formed, never issued
            for index in 0..<30 { requests.append((HoldReference(eventID: EventID()).token, "forger-\(index)")) }  // unknown event
            for index in 0..<30 { requests.append(("garbage-\(index)", "forger-\(index)")) }
            #expect(requests.count == 500)

            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for request in requests.shuffled() {
                    group.addTask { try await client.book(request.hold, customer: request.customer) }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            let statuses = Dictionary(grouping: answers, by: \.status.code).mapValues(\.count)
            #expect(
                Set(statuses.keys).isSubset(of: [201, 409, 422]),
                "\(statuses) \(answers.filter { $0.status.code >= 500 }.map { String(decoding: $0.bytes, as: UTF8.self) })")
            #expect(statuses[201] == live.count, "one booking per live hold: \(statuses)")
            let created = Set(answers.filter { $0.status == .created }.compactMap { $0["hold_id"]?.stringValue })
            #expect(created == Set(live.map(\.hold)))
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.bookings") == 80)
        #expect(
            try await harness.count(
                "SELECT count(*) FROM (SELECT 1 FROM booking.booking_seats WHERE released_at IS NULL GROUP BY event_id, seat_id HAVING count(*) > 1) AS doubled"
            ) == 0)
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payment.requested'") == 80)
    }

    @Test("When Redis wrongly shows booked seats as free, the database's unique index refuses the second booking with 409")
    func databaseIsTheFinalGuard() async throws {
        let harness = try await BookingHarness.make()
        let store = harness.parts.holds
        try await harness.run { client in
            let event = try await client.createEvent(seats: 4)
            let eventID = EventID(try #require(UUID(uuidString: event)))
            #expect(try await client.holdAndBook(event, ["S1", "S2"], customer: "first").status == .created)
            // Redis loses the booking's keys and holds a stale cache that claims to be complete.
            let keys = [store.unavailableKey(eventID), store.seatKey(eventID, try SeatID("S1")), store.seatKey(eventID, try SeatID("S2"))]
            _ = try await store.redis.send([RedisArgument("DEL")] + keys.map { RedisArgument($0) })
            _ = try await store.redis.send("SADD", RedisArgument(store.unavailableKey(eventID)), "")
            let hold = try await client.hold(event, ["S2", "S3"], customer: "second")
            #expect(hold.status == .created, "Redis no longer knows S2 is booked")
            let refused = try await client.book(try #require(hold["hold_id"]?.stringValue), customer: "second")
            #expect(refused.status == .conflict)
            #expect(refused.errorCode == "seats_unavailable")
            #expect(refused.seatIDs == ["S2"])
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.bookings") == 1)
        #expect(try await harness.count("SELECT count(*) FROM booking.booking_seats WHERE seat_id = 'S2'") == 1)
    }
}
