import Foundation
import HTTPTypes
import HummingbirdTesting
import Redis
import ServiceKit
import SharedModel
import TestSupport
import Testing

@testable import Booking

/// A unique customer id, so suites sharing the test Redis never share a ledger or a bucket.
private func customer(_ name: String) -> String { "\(name)-\(UUID().uuidString.prefix(8).lowercased())" }

@Suite("Hold limits: seats held per customer, hold attempts per customer, API key rate limits")
struct HoldLimitTests {
    @Test("20 concurrent holds of 2 seats by one customer against a cap of 20: exactly 10 succeed, the others are 409 hold_limit_reached")
    func concurrentHoldsRespectTheCap() async throws {
        let harness = try await BookingHarness.make(settings: ["MAX_HELD_SEATS_PER_CUSTOMER": "20"])
        let buyer = customer("spinner")
        let store = harness.parts.holds
        try await harness.run { client in
            let event = try await client.createEvent(seats: 40)
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for index in 0..<20 {
                    group.addTask { try await client.hold(event, ["S\(2 * index + 1)", "S\(2 * index + 2)"], customer: buyer) }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == .created }.count == 10)
            let refused = answers.filter { $0.status != .created }
            #expect(refused.count == 10)
            for answer in refused {
                #expect(answer.status == .conflict && answer.errorCode == "hold_limit_reached")
                let details = answer.json?["error"]?["details"]
                #expect(details?["limit"] == 20 && details?["held"] == 20 && details?["requested"] == 2)
                #expect(answer.json?["error"]?["message"]?.stringValue?.contains("20") == true)
            }
            // The seats of the refused holds are free.
            let seats = try await client.call(.get, "/v1/events/\(event)/seats")
            let held = (seats["seats"]?.arrayValue ?? []).filter { $0["state"] == "held" }
            #expect(held.count == 20)
            #expect(try await store.heldSeatCount(customer: CustomerID(buyer), now: Date()) == 20)
            // Another customer is not affected.
            let free = try #require((seats["seats"]?.arrayValue ?? []).first { $0["state"] == "available" }?["seat_id"]?.stringValue)
            #expect(try await client.hold(event, [free], customer: customer("other")).status == .created)
        }
    }

    @Test("seats of a booking awaiting payment count; released holds, cancelled and expired bookings free them")
    func pendingBookingsCount() async throws {
        let harness = try await BookingHarness.make(settings: ["MAX_HELD_SEATS_PER_CUSTOMER": "4"])
        let buyer = customer("buyer")
        let (store, postgres) = (harness.parts.holds, harness.parts.app.postgres)
        try await harness.run { client in
            let event = try await client.createEvent(seats: 12)
            let booked = try await client.holdAndBook(event, ["S1", "S2"], customer: buyer)
            #expect(booked.status == .created && booked["status"] == "pending_payment")
            let bookingID = try #require(booked["booking_id"]?.stringValue)
            let second = try await client.hold(event, ["S3", "S4"], customer: buyer)
            #expect(second.status == .created)
            let over = try await client.hold(event, ["S5"], customer: buyer)
            #expect(over.errorCode == "hold_limit_reached")
            #expect(over.json?["error"]?["details"] == ["limit": 4, "held": 4, "requested": 1])
            // Releasing a hold gives its seats back.
            let holdID = try #require(second["hold_id"]?.stringValue)
            #expect(try await client.call(.delete, "/v1/holds/\(holdID)?customer_id=\(buyer)").status == .noContent)
            #expect(try await client.hold(event, ["S5"], customer: buyer).status == .created)
            #expect(try await client.hold(event, ["S6", "S7"], customer: buyer).errorCode == "hold_limit_reached")
            // Cancelling the booking awaiting payment frees its two seats.
            let cancelled = try await client.call(.post, "/v1/bookings/\(bookingID)/cancel", json: ["customer_id": .string(buyer)])
            #expect(cancelled.status == .ok && cancelled["status"] == "cancelled")
            #expect(try await client.hold(event, ["S6", "S7"], customer: buyer).status == .created)

            // An expired booking frees its seats too.
            let late = customer("late")
            let unpaid = try await client.holdAndBook(event, ["S8", "S9", "S10", "S11"], customer: late)
            #expect(unpaid.status == .created)
            #expect(try await client.hold(event, ["S12"], customer: late).errorCode == "hold_limit_reached")
            let after = Date().addingTimeInterval(3600)
            let poller = SagaDeadlinePoller(postgres: postgres, holds: store, logger: TestEnvironment.logger) {
                after
            }
            try await poller.expireDue()
            let expired = try await client.call(.get, "/v1/bookings/\(try #require(unpaid["booking_id"]?.stringValue))")
            #expect(expired["status"] == "expired")
            #expect(try await store.heldSeatCount(customer: CustomerID(late), now: Date()) == 0)
            #expect(try await client.hold(event, ["S12"], customer: late).status == .created)
        }
    }

    @Test("a confirmed booking's seats no longer count as held")
    func confirmedBookingsDoNotCount() async throws {
        let buyer = customer("payer")
        try await SagaWorld.run(settings: ["MAX_HELD_SEATS_PER_CUSTOMER": "2"]) { client, world in
            let event = try await client.createEvent(seats: 4)
            let booking = try await client.booked(event, ["S1", "S2"], customer: buyer)
            #expect(try await client.hold(event, ["S3"], customer: buyer).errorCode == "hold_limit_reached")
            try await world.publish(try paid(booking, reference: "pi_limit_\(UUID().uuidString.prefix(8))"))
            try await world.waitUntil(
                "SELECT count(*) FROM booking.bookings WHERE booking_id = \(booking.id.uuid) AND status = 'confirmed'", equals: 1)
            let store = SeatHoldStore(redis: world.redis)
            let deadline = ContinuousClock.now + .seconds(5)
            while try await store.heldSeatCount(customer: CustomerID(buyer), now: Date()) > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await client.hold(event, ["S3", "S4"], customer: buyer).status == .created)
        }
    }

    @Test("a flushed Redis resets the customer's held-seat count (holds and the ledger are lost together)")
    func flushedRedisResets() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let harness = try await BookingHarness.make(redisURL: servers.redisURL, settings: ["MAX_HELD_SEATS_PER_CUSTOMER": "2"])
            let buyer = customer("flushed")
            let redis = harness.parts.holds.redis
            try await harness.run { client in
                let event = try await client.createEvent(seats: 4)
                #expect(try await client.hold(event, ["S1", "S2"], customer: buyer).status == .created)
                #expect(try await client.hold(event, ["S3"], customer: buyer).errorCode == "hold_limit_reached")
                _ = try await redis.send("FLUSHALL")
                #expect(try await client.hold(event, ["S3", "S4"], customer: buyer).status == .created)
                #expect(try await client.hold(event, ["S1"], customer: buyer).errorCode == "hold_limit_reached")
            }
        }
    }

    @Test("hold attempts: the bucket refuses the 4th attempt in a minute with 429 and Retry-After, failed attempts count, refill lets one more in")
    func holdAttemptsAreRateLimited() async throws {
        let clock = SagaTestClock()
        let harness = try await BookingHarness.make(
            settings: ["HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE": "3"], clock: WallClock { clock.now })
        let cycler = customer("cycler")
        let store = harness.parts.holds
        try await harness.run { client in
            let event = try await client.createEvent(seats: 4)
            #expect(try await client.hold(event, ["S1"], customer: customer("first")).status == .created)
            // A failed attempt (409) counts.
            #expect(try await client.hold(event, ["S1"], customer: cycler).errorCode == "seats_unavailable")
            let hold = try await client.hold(event, ["S2"], customer: cycler)
            #expect(hold.status == .created)
            let holdID = try #require(hold["hold_id"]?.stringValue)
            #expect(try await client.call(.delete, "/v1/holds/\(holdID)?customer_id=\(cycler)").status == .noContent)
            #expect(try await client.hold(event, ["S2"], customer: cycler).status == .created)
            let limited = try await client.hold(event, ["S3"], customer: cycler)
            #expect(limited.status == .tooManyRequests && limited.errorCode == "rate_limited")
            // One token per 20 s: the next is 20 s away.
            #expect(limited.headers[.retryAfter] == "20")
            #expect(limited.json?["error"]?["message"]?.stringValue?.contains("3 per minute") == true)
            // Another customer is not limited.
            #expect(try await client.hold(event, ["S4"], customer: customer("other")).status == .created)
            clock.set(clock.now.addingTimeInterval(10))
            #expect(try await client.hold(event, ["S3"], customer: cycler).headers[.retryAfter] == "10")
            clock.set(clock.now.addingTimeInterval(10))
            #expect(try await client.hold(event, ["S3"], customer: cycler).status == .created)
            #expect(try await client.hold(event, ["S3"], customer: cycler).status == .tooManyRequests)
            // A full minute refills the whole bucket.
            clock.set(clock.now.addingTimeInterval(60))
            for _ in 0..<3 { #expect(try await client.hold(event, ["S1"], customer: cycler).errorCode == "seats_unavailable") }
            #expect(try await client.hold(event, ["S1"], customer: cycler).status == .tooManyRequests)
            // The bucket lives in the customer's ledger, beside the held seats it does not count as.
            let ledger = RedisArgument(store.heldKey(try CustomerID(cycler)))
            #expect(try await store.redis.send("HGET", ledger, "~tokens").string.flatMap(Double.init).map { $0 < 1 } == true)
            #expect(try await store.redis.send("HEXISTS", ledger, "~at").integer == 1)
            #expect(try await store.heldSeatCount(customer: CustomerID(cycler), now: clock.now) == 2, "S2 and S3")
            #expect(try await store.redis.send("EXISTS", RedisArgument("booking:{customer:\(cycler)}:attempts")).integer == 0)
        }
    }

    @Test(
        "API key rate limits: none by default; when set, a client's bucket answers 429 with Retry-After, other clients and the admin are not limited")
    func apiKeyRateLimits() async throws {
        let plain = try await BookingHarness.make()
        #expect(plain.parts.configuration.apiKeyRateLimits.isEmpty)
        try await plain.run { client in
            let event = try await client.createEvent(seats: 1)
            for _ in 0..<30 { #expect(try await client.call(.get, "/v1/events/\(event)").status == .ok) }
        }

        let name = "limited-\(UUID().uuidString.prefix(8).lowercased())"
        let bearer: HTTPFields = [.authorization: "Bearer \(name)-key"]
        let harness = try await BookingHarness.make(settings: [
            "API_KEYS": "\(BookingHarness.apiKey),\(name):\(name)-key", "API_KEY_RATE_LIMITS": "\(name)=2/m",
        ])
        try await harness.run { client in
            let event = try await client.createEvent(seats: 2)
            for _ in 0..<2 { #expect(try await client.call(.get, "/v1/events/\(event)", as: .anonymous, headers: bearer).status == .ok) }
            let limited = try await client.call(.get, "/v1/events/\(event)/seats", as: .anonymous, headers: bearer)
            #expect(limited.status == .tooManyRequests && limited.errorCode == "rate_limited")
            #expect(limited.headers[.retryAfter] == "30")
            let hold = try await client.call(
                .post, "/v1/holds", as: .anonymous, json: ["event_id": .string(event), "seat_ids": ["S1"], "customer_id": "c"], headers: bearer)
            #expect(hold.status == .tooManyRequests)
            // Unknown credentials are still 401, the unnamed client and the admin are not limited.
            #expect(
                try await client.call(.get, "/v1/events/\(event)", as: .anonymous, headers: [.authorization: "Bearer nope"]).status == .unauthorized)
            for _ in 0..<5 {
                #expect(try await client.call(.get, "/v1/events/\(event)").status == .ok)
                #expect(try await client.call(.get, "/v1/events/\(event)", as: .admin).status == .ok)
            }
        }
    }

    @Test("settings: the limits' defaults, ranges and API_KEY_RATE_LIMITS' format")
    func settings() throws {
        func configuration(_ extra: [String: String]) throws -> BookingConfiguration {
            let environment = ["DATABASE_URL": "postgres://x@h/db", "REDIS_URL": "redis://h", "ADMIN_TOKEN": "a", "API_KEYS": "k"].merging(extra) {
                $1
            }
            return try BookingConfiguration(reader: ConfigurationReader(environment: environment))
        }
        let defaults = try configuration([:])
        #expect(defaults.holdLimits == CustomerHoldLimits(maximumHeldSeats: 20, attempts: RateLimit(capacity: 60, period: .seconds(60))))
        #expect(defaults.apiKeyRateLimits.isEmpty)
        #expect(throws: ConfigurationError.self) { try configuration(["MAX_HELD_SEATS_PER_CUSTOMER": "0"]) }
        #expect(throws: ConfigurationError.self) { try configuration(["MAX_HELD_SEATS_PER_CUSTOMER": "10001"]) }
        #expect(throws: ConfigurationError.self) { try configuration(["HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE": "0"]) }
        let limits = try APIKeyRateLimits.parse("web=100/s, batch=20/m,*=500/s")
        #expect(limits.limit(for: "web") == RateLimit(capacity: 100, period: .seconds(1)))
        #expect(limits.limit(for: "batch") == RateLimit(capacity: 20, period: .seconds(60)))
        #expect(limits.limit(for: "anyone") == RateLimit(capacity: 500, period: .seconds(1)))
        #expect(try APIKeyRateLimits.parse("web=1/s").limit(for: "other") == nil)
        for bad in ["web", "web=10", "web=10/h", "web=0/s", "=5/s", "web=1/s,web=2/s", "*=1/s,*=2/s", "web=x/s", ","] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try APIKeyRateLimits.parse(bad) }
        }
    }
}
