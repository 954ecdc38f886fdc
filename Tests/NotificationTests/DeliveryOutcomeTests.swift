import Foundation
import HTTPTypes
import Messaging
import Postgres
import ServiceKit
import SharedModel
import TestSupport
import Testing

@testable import Notification

@Suite("Delivery outcomes: 410, Retry-After, redirects, exhaustion and replay, disabling, ordering, isolation")
struct DeliveryOutcomeTests {
    /// The delivery of the only event to the only endpoint.
    static func delivery(_ harness: NotificationHarness) async throws -> (status: String, attempts: Int, next: Date?) {
        let row = try #require(try await harness.postgres.query("SELECT status, attempt_count, next_attempt_at FROM notification.deliveries").first)
        return (try row.decode(String.self, at: 0), Int(try row.decode(Int32.self, at: 1)), try row.decode(Date?.self, at: 2))
    }

    @Test("410 Gone disables the endpoint after 1 attempt, emits notification.endpoint_disabled, and nothing more is sent")
    func gone() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.on("/gone") { _ in .init(status: .gone) }
        let harness = try await NotificationHarness.make()
        try await harness.run { client in
            let endpoint = try await harness.createEndpoint(client, url: receiver.url("/gone"))
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))])
            #expect(await receiver.waitFor(1, at: "/gone").count == 1)
            #expect(
                try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.endpoints WHERE status = 'disabled'") == 1 }
            )
            let shown = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")
            #expect(shown["status"]?.stringValue == "disabled")
            #expect(shown["disabled_reason"]?.stringValue == "the endpoint answered 410 Gone")
            #expect(shown["failing_since"]?.stringValue != nil)
            let events = try await harness.postgres.query(
                "SELECT envelope->'data'->>'endpoint_id' FROM messaging.outbox WHERE event_type = 'notification.endpoint_disabled'")
            #expect(try events.map { try $0.decode(String.self, at: 0) } == [endpoint.id.uuidString.lowercased()])
            harness.clock.advance(by: .seconds(3_600))
            try await Task.sleep(for: .milliseconds(700))
            #expect(receiver.requests("/gone").count == 1, "a disabled endpoint gets no more attempts")
            #expect(try await Self.delivery(harness).status == "pending", "kept for a resume")
        }
    }

    @Test("429 with Retry-After is not retried sooner: 2 s at least, and 600 s when it says 600")
    func retryAfter() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.on("/busy") { n in n == 1 ? .init(status: .tooManyRequests, headers: [.retryAfter: "600"]) : .init() }
        receiver.on("/briefly") { n in n == 1 ? .init(status: .serviceUnavailable, headers: [.retryAfter: "2"]) : .init() }
        // The lowest jitter: the schedule alone would wait 4 s after the first failure.
        let harness = try await NotificationHarness.make(random: -1)
        try await harness.run { client in
            _ = try await harness.createEndpoint(client, url: receiver.url("/busy"))
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))])
            #expect(await receiver.waitFor(1, at: "/busy").count == 1)
            #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == 1 })
            let first = try #require(try await Self.delivery(harness).next)
            #expect(first.timeIntervalSince(harness.clock.now) >= 600 - 0.01)
            harness.clock.advance(by: .seconds(300))
            try await Task.sleep(for: .milliseconds(700))
            #expect(receiver.requests("/busy").count == 1, "not before Retry-After")
            harness.clock.advance(by: .seconds(300))
            #expect(await receiver.waitFor(2, at: "/busy").count == 2)

            _ = try await harness.createEndpoint(client, url: receiver.url("/briefly"))
            let sent = harness.clock.now.addingTimeInterval(1)
            harness.clock.set(sent)
            try await harness.fanOut([try NotificationHarness.event(occurredAt: sent)])
            #expect(await receiver.waitFor(1, at: "/briefly").count == 1)
            // The event goes to /busy too (answered at once now): its delivery can still be pending,
            // not yet attempted, when /briefly's attempt is recorded, so both queries name /briefly.
            #expect(
                try await harness.eventually {
                    try await harness.count(
                        """
                        SELECT count(*) FROM notification.attempts a JOIN notification.deliveries d ON d.id = a.delivery_id
                        JOIN notification.endpoints e ON e.id = d.endpoint_id WHERE e.url LIKE '%/briefly' AND d.status = 'pending'
                        """) == 1
                })
            let next = try #require(
                try await harness.postgres.query(
                    """
                    SELECT d.next_attempt_at FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id
                    WHERE e.url LIKE '%/briefly' AND d.status = 'pending'
                    """
                ).first?.decode(Date.self, at: 0))
            #expect(next.timeIntervalSince(sent) >= 2)
        }
    }

    @Test("a redirect is a failure and is not followed")
    func redirect() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.on("/moved") { _ in .init(status: .found, headers: [.location: receiver.url("/target")]) }
        let harness = try await NotificationHarness.make()
        try await harness.run { client in
            _ = try await harness.createEndpoint(client, url: receiver.url("/moved"))
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))])
            #expect(await receiver.waitFor(1, at: "/moved").count == 1)
            #expect(
                try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts WHERE status_code = 302") == 1 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.requests("/target").isEmpty)
            let delivery = try await Self.delivery(harness)
            #expect(delivery.status == "pending" && delivery.attempts == 1)
        }
    }

    @Test("after the 10th failure the delivery is failed with a failure dead letter; replaying the dead letter delivers it again")
    func exhaustedThenReplayed() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        let healthy = Synchronized(false)
        receiver.on("/down") { _ in healthy.withLock { $0 } ? .init() : .init(status: .badGateway) }
        let harness = try await NotificationHarness.make(settings: ["NOTIFICATION_DISABLE_AFTER": "720h"])
        try await harness.run { client in
            let endpoint = try await harness.createEndpoint(client, url: receiver.url("/down"))
            let event = try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))
            try await harness.fanOut([event])
            for n in 1...10 {
                #expect(await receiver.waitFor(n, at: "/down").count == n, "attempt \(n)")
                #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == n })
                harness.clock.advance(by: .seconds(25 * 3_600))
            }
            #expect(try await harness.eventually { try await Self.delivery(harness).status == "failed" })
            let letters = try await harness.postgres.query(
                "SELECT id, consumer, kind, attempts, event_id FROM messaging.dead_letters WHERE status = 'open'")
            #expect(letters.count == 1)
            let letter = try #require(letters.first)
            #expect(try letter.decode(String.self, at: 1) == "notification-delivery:\(endpoint.id.uuidString.lowercased())")
            #expect(try letter.decode(String.self, at: 2) == "failure")
            #expect(try letter.decode(Int32.self, at: 3) == 10)
            #expect(try letter.decode(UUID.self, at: 4) == event.id.uuid)
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'dead_letter.recorded'") == 1)

            healthy.withLock { $0 = true }
            let replay = try await harness.send(
                client, .post, "/v1/admin/dead-letters/\(try letter.decode(UUID.self, at: 0))/replay", body: [:],
                headers: [HTTPField.Name("X-Operator")!: "test"])
            #expect(replay.status.code < 300, "\(String(describing: replay.json))")
            #expect(await receiver.waitFor(11, at: "/down").count == 11)
            #expect(try await harness.eventually { try await Self.delivery(harness).status == "succeeded" })
            #expect(receiver.requests("/down").last?.webhookID == event.id.description)
        }
    }

    @Test("an endpoint failing without a success for NOTIFICATION_DISABLE_AFTER is disabled with its reason and the event")
    func disabledAfterFailingTooLong() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.on("/broken") { _ in .init(status: .internalServerError) }
        let harness = try await NotificationHarness.make(settings: ["NOTIFICATION_DISABLE_AFTER": "1h"])
        try await harness.run { client in
            let endpoint = try await harness.createEndpoint(client, url: receiver.url("/broken"))
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))])
            // Attempts at 0, 5 s, 305 s, 2,105 s and 9,305 s: only the 5th failure is more than 1 h after the first.
            for (n, wait) in [(1, 5), (2, 300), (3, 1_800), (4, 7_200), (5, 0)] {
                #expect(await receiver.waitFor(n, at: "/broken").count == n)
                #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == n })
                if n == 4 {
                    #expect(try await harness.count("SELECT count(*) FROM notification.endpoints WHERE status = 'enabled'") == 1)
                }
                harness.clock.advance(by: .seconds(wait))
            }
            let shown = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")
            #expect(shown["status"]?.stringValue == "disabled")
            #expect(shown["disabled_reason"]?.stringValue == "no successful delivery for 1 h (NOTIFICATION_DISABLE_AFTER)")
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'notification.endpoint_disabled'") == 1)
            let resumed = try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/resume")
            #expect(resumed["status"]?.stringValue == "enabled")
            #expect(resumed["failing_since"] == .null)
        }
    }

    @Test("three events of one booking, the first failing twice, arrive in sequence order")
    func ordering() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        let booking = UUID().uuidString.lowercased()
        let harness = try await NotificationHarness.make()
        let start = harness.clock.now.addingTimeInterval(1)
        let events = try (1...3).map { try NotificationHarness.event(aggregate: booking, sequence: Int64($0), occurredAt: start) }
        let firstID = events[0].id.description
        let failures = Synchronized(0)
        try await harness.run { client in
            _ = try await harness.createEndpoint(client, url: receiver.url("/ordered"))
            // The first event's first two attempts fail (the receiver records a request before it answers).
            receiver.on("/ordered") { _ in
                let first = receiver.requests("/ordered").last?.webhookID == firstID
                let fails =
                    first
                    && failures.withLock { count in
                        count += 1
                        return count <= 2
                    }
                return fails ? .init(status: .internalServerError) : .init()
            }
            harness.clock.set(start)
            try await harness.fanOut(events)
            #expect(await receiver.waitFor(1, at: "/ordered").count == 1)
            #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == 1 })
            try await Task.sleep(for: .milliseconds(500))
            #expect(receiver.requests("/ordered").count == 1, "the later events wait for the first")
            harness.clock.advance(by: .seconds(5))
            #expect(await receiver.waitFor(2, at: "/ordered").count == 2)
            #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == 2 })
            harness.clock.advance(by: .seconds(300))
            let all = await receiver.waitFor(5, at: "/ordered")
            #expect(all.map(\.webhookID) == [firstID, firstID, firstID, events[1].id.description, events[2].id.description])
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries WHERE out_of_order") == 0)
        }
    }

    @Test(
        "a delivery waits for an earlier one of its booking at most NOTIFICATION_ORDER_WAIT, then goes out flagged out_of_order; other bookings never wait"
    )
    func orderWait() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        let harness = try await NotificationHarness.make(settings: ["NOTIFICATION_ORDER_WAIT": "10m"])
        let start = harness.clock.now.addingTimeInterval(1)
        let booking = UUID().uuidString.lowercased()
        let first = try NotificationHarness.event(aggregate: booking, sequence: 1, occurredAt: start)
        let second = try NotificationHarness.event(aggregate: booking, sequence: 2, occurredAt: start)
        let other = try NotificationHarness.event(sequence: 1, occurredAt: start)
        try await harness.run { client in
            receiver.on("/hook") { _ in
                receiver.requests("/hook").last?.webhookID == first.id.description ? .init(status: .internalServerError) : .init()
            }
            _ = try await harness.createEndpoint(client, url: receiver.url("/hook"))
            harness.clock.set(start)
            try await harness.fanOut([first, second, other])
            let early = await receiver.waitFor(2, at: "/hook")
            #expect(Set(early.map(\.webhookID)) == [first.id.description, other.id.description], "the other booking does not wait")
            // Keep the first failing: its retries (5 s, 5 min) stay behind the 10 min wait.
            #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == 2 })
            harness.clock.advance(by: .seconds(5))
            let third = await receiver.waitFor(3, at: "/hook")
            let state = try await harness.postgres.query(
                "SELECT event_id::text, status, attempt_count, next_attempt_at::text, lease_until::text FROM notification.deliveries"
            ).map { row in
                "\(try row.decode(String.self, at: 0)) \(try row.decode(String.self, at: 1)) \(try row.decode(Int32.self, at: 2)) \(try row.decode(String?.self, at: 3) ?? "-") \(try row.decode(String?.self, at: 4) ?? "-")"
            }
            #expect(third.count == 3, "\(state) first \(first.id) now \(harness.clock.now)")
            harness.clock.advance(by: .seconds(600))
            // The first's 3rd attempt (due at 5 min) goes out too, in either order with the second.
            #expect(
                try await harness.eventually {
                    receiver.requests("/hook").contains { $0.webhookID == second.id.description }
                })
            #expect(
                try await harness.eventually {
                    try await harness.count("SELECT count(*) FROM notification.deliveries WHERE out_of_order AND event_id = \(second.id.uuid)") == 1
                })
        }
    }

    @Test("one endpoint that takes 10 s per request and one that refuses connections do not delay 20 healthy endpoints")
    func isolation() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.on("/slow") { _ in .init(delay: .seconds(10)) }
        let harness = try await NotificationHarness.make(settings: ["NOTIFICATION_TIMEOUT": "15s"])
        try await harness.run { client in
            // The slow and the refusing endpoint also get 8 refund events first, so they are saturated
            // (4 attempts in flight each) when the one booking event reaches everyone.
            _ = try await harness.createEndpoint(client, url: receiver.url("/slow"), eventTypes: ["booking.*", "refund.*"])
            _ = try await harness.createEndpoint(client, url: "http://127.0.0.1:\(try freePort())/refused", eventTypes: ["booking.*", "refund.*"])
            for index in 0..<20 { _ = try await harness.createEndpoint(client, url: receiver.url("/healthy/\(index)"), eventTypes: ["booking.*"]) }
            let occurred = harness.clock.now.addingTimeInterval(1)
            harness.clock.advance(by: .seconds(1))
            try await harness.fanOut(try (0..<8).map { _ in try NotificationHarness.event(type: "refund.succeeded", occurredAt: occurred) })
            #expect(await receiver.waitFor(4, at: "/slow").count == 4)
            let started = ContinuousClock.now
            try await harness.fanOut([try NotificationHarness.event(occurredAt: occurred)])
            // Well under the slow endpoint's 10 s, so none of them waited behind it; not tighter, so a
            // loaded CI machine does not fail the test for being slow rather than for blocking.
            let bound = Duration.seconds(5)
            for index in 0..<20 {
                let got = await receiver.waitFor(1, at: "/healthy/\(index)", timeout: bound - (ContinuousClock.now - started))
                #expect(got.count == 1, "healthy endpoint \(index) got its delivery within \(bound)")
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < bound, "all healthy deliveries within \(bound): \(elapsed)")
            let slow = receiver.requests("/slow")
            #expect(slow.count == 4, "the slow endpoint holds its 4 slots: \(slow.count)")
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM notification.attempts a JOIN notification.deliveries d ON d.id = a.delivery_id JOIN notification.endpoints e ON e.id = d.endpoint_id WHERE e.url LIKE '%/slow'"
                ) == 0,
                "its first request is still open")
        }
    }

    @Test("an endpoint's rate limit spaces its attempts")
    func rateLimit() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        let harness = try await NotificationHarness.make()
        try await harness.run { client in
            _ = try await harness.createEndpoint(client, url: receiver.url("/limited"), rateLimit: 5)
            let events = try (0..<6).map { _ in try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1)) }
            harness.clock.advance(by: .seconds(1))
            try await harness.fanOut(events)
            let got = await receiver.waitFor(6, at: "/limited")
            #expect(got.count == 6)
            let span = try #require(got.last?.at).timeIntervalSince(try #require(got.first?.at))
            #expect(span >= 0.9, "6 attempts at 5/s span at least 1 s: \(span)")
        }
    }
}
