import Foundation
import HTTPTypes
import ServiceKit
import SharedModel
import TestSupport
import Testing

@testable import Notification

/// The endpoints API of notification-api.md: the endpoint's life cycle, subscriptions as the fan-out
/// applies them, bad input on every route, admin authentication, and replay.
@Suite("Notification endpoints API: life cycle, subscriptions, validation, authentication, replay")
struct EndpointAPITests {
    typealias Answer = NotificationHarness.Answer

    /// The fields of an Endpoint, exactly (notification-api.md).
    static let endpointFields: Set<String> = [
        "endpoint_id", "url", "description", "event_types", "rate_limit_per_s", "status", "disabled_reason", "failing_since", "created_at",
        "updated_at",
    ]

    /// Every deliverable event type (notification-api.md, Deliverable event types).
    static let deliverableTypes = [
        "booking.confirmed", "booking.cancelled", "booking.expired", "refund.requested", "refund.succeeded", "refund.failed", "payout.created",
        "payout.paid", "payout.failed", "notification.endpoint_disabled", "dead_letter.recorded", "event.cancelled",
    ]

    /// Types that are never delivered to anyone.
    static let undeliverableTypes = ["booking.requested", "payment.requested", "payment.intent_created", "payment.succeeded", "payment.failed"]

    /// A clock on a whole second, so times survive the API's millisecond rendering exactly.
    static func wholeSecondClock() -> TestClock {
        TestClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
    }

    static func date(_ value: JSONValue?) -> Date? {
        value?.stringValue.flatMap { try? RFC3339.date(from: $0) }
    }

    static func keys(_ answer: Answer) -> Set<String> {
        Set(answer.json?.objectValue.map { Array($0.keys) } ?? [])
    }

    static func ids(_ answer: Answer, _ list: String = "endpoints") -> [String] {
        answer[list]?.arrayValue?.compactMap { $0["endpoint_id"]?.stringValue } ?? []
    }

    static func isSecret(_ text: String?) -> Bool {
        guard let text, text.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(text.dropFirst(6))) else { return false }
        return bytes.count == 32
    }

    static func producer(of type: String) -> EventProducer {
        switch type.split(separator: ".").first {
        case "refund", "payment": .paymentsWebhook
        case "payout": .payout
        case "notification", "dead_letter": .notification
        default: .booking
        }
    }

    static func event(_ type: String, at date: Date) throws -> EventEnvelope {
        try NotificationHarness.event(type: type, producer: producer(of: type), occurredAt: date)
    }

    static func deliveries(_ harness: NotificationHarness, to endpoint: UUID, type: String? = nil) async throws -> Int {
        if let type {
            return try await harness.count("SELECT count(*) FROM notification.deliveries WHERE endpoint_id = \(endpoint) AND event_type = \(type)")
        }
        return try await harness.count("SELECT count(*) FROM notification.deliveries WHERE endpoint_id = \(endpoint)")
    }

    static func describe(_ answer: Answer) -> String {
        "\(answer.status.code) \(answer.json.map { String(describing: $0) } ?? "<no JSON body>")"
    }

    // MARK: Life cycle

    @Test("create answers 201 with every endpoint field and a whsec_ secret of 32 random bytes; GET and the list never show a secret")
    func createAndRead() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let now = harness.clock.now
            let created = try await harness.send(
                client, .post, "/v1/endpoints",
                body: [
                    "url": "https://hooks.example.com/x", "description": "Ops alerts", "event_types": ["booking.*", "refund.succeeded"],
                    "rate_limit_per_s": 20,
                ])
            #expect(created.status == .created, "\(Self.describe(created))")
            #expect(Self.keys(created) == Self.endpointFields.union(["secret"]))
            let id = try #require(created["endpoint_id"]?.stringValue)
            #expect(UUID(uuidString: id) != nil)
            #expect(id == id.lowercased(), "ids are lower-case")
            #expect(created["url"] == "https://hooks.example.com/x")
            #expect(created["description"] == "Ops alerts")
            #expect(created["event_types"] == ["booking.*", "refund.succeeded"])
            #expect(created["rate_limit_per_s"]?.integerValue == 20)
            #expect(created["status"] == "enabled")
            #expect(created["disabled_reason"] == .null)
            #expect(created["failing_since"] == .null)
            #expect(Self.date(created["created_at"]) == now)
            #expect(Self.date(created["updated_at"]) == now)
            #expect(created["created_at"]?.stringValue?.hasSuffix("Z") == true, "times are UTC")
            let secret = created["secret"]?.stringValue
            #expect(Self.isSecret(secret), "secret \(secret ?? "nil") is whsec_ + base64 of 32 bytes")

            // Optional fields default to null / all types.
            let minimal = try await harness.send(client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/y"])
            #expect(minimal.status == .created)
            #expect(minimal["description"] == .null)
            #expect(minimal["event_types"] == [])
            #expect(minimal["rate_limit_per_s"] == .null)
            #expect(Self.isSecret(minimal["secret"]?.stringValue))
            #expect(minimal["secret"] != created["secret"], "each endpoint gets its own secret")

            let read = try await harness.send(client, .get, "/v1/endpoints/\(id)")
            #expect(read.status == .ok)
            #expect(Self.keys(read) == Self.endpointFields, "GET shows no secret")
            for field in Self.endpointFields { #expect(read[field] == created[field], "\(field) reads back as created") }

            let list = try await harness.send(client, .get, "/v1/endpoints")
            #expect(list.status == .ok)
            let items = try #require(list["endpoints"]?.arrayValue)
            #expect(items.count == 2)
            for item in items { #expect(Set(item.objectValue?.keys.map { $0 } ?? []) == Self.endpointFields, "list items show no secret") }

            // The secret is stored sealed, never as its text.
            let plain = try #require(secret)
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM notification.endpoint_secrets WHERE position(convert_to(\(plain), 'UTF8') IN sealed) > 0") == 0)
        }
    }

    @Test("the list pages newest first: limit=1 with next_cursor walks every endpoint once, and the last page has next_cursor null")
    func listPagination() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            var created: [String] = []
            for n in 1...3 {
                created.append(try await harness.createEndpoint(client, url: "https://hooks.example.com/\(n)").id.uuidString.lowercased())
                harness.clock.advance(by: .seconds(1))
            }
            let newestFirst = Array(created.reversed())
            let all = try await harness.send(client, .get, "/v1/endpoints")
            #expect(Self.ids(all) == newestFirst)
            #expect(all["next_cursor"] == .null)

            var seen: [String] = []
            var path = "/v1/endpoints?limit=1"
            for page in 1...3 {
                let answer = try await harness.send(client, .get, path)
                #expect(answer.status == .ok, "page \(page): \(Self.describe(answer))")
                let ids = Self.ids(answer)
                #expect(ids.count == 1, "page \(page)")
                seen += ids
                if page < 3 {
                    let cursor = try #require(answer["next_cursor"]?.stringValue, "page \(page) has a next_cursor")
                    path = "/v1/endpoints?limit=1&cursor=\(cursor)"
                } else {
                    #expect(answer["next_cursor"] == .null, "the last page ends the list")
                }
            }
            #expect(seen == newestFirst)
            let two = try await harness.send(client, .get, "/v1/endpoints?limit=2")
            #expect(Self.ids(two) == Array(newestFirst.prefix(2)))
            #expect(two["next_cursor"]?.stringValue != nil)
        }
    }

    @Test("PATCH changes url, description, event_types and rate_limit_per_s; null clears description and rate_limit_per_s; absent fields stay")
    func patch() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let createdAt = harness.clock.now
            let created = try await harness.send(
                client, .post, "/v1/endpoints",
                body: ["url": "https://hooks.example.com/old", "description": "old", "event_types": ["booking.*"], "rate_limit_per_s": 5])
            let id = try #require(created["endpoint_id"]?.stringValue)
            harness.clock.advance(by: .seconds(10))

            let changed = try await harness.send(
                client, .patch, "/v1/endpoints/\(id)",
                body: [
                    "url": "https://hooks.example.com/new", "description": "new", "event_types": ["refund.*", "payout.paid"], "rate_limit_per_s": 50,
                ])
            #expect(changed.status == .ok, "\(Self.describe(changed))")
            #expect(Self.keys(changed) == Self.endpointFields)
            #expect(changed["url"] == "https://hooks.example.com/new")
            #expect(changed["description"] == "new")
            #expect(changed["event_types"] == ["refund.*", "payout.paid"])
            #expect(changed["rate_limit_per_s"]?.integerValue == 50)
            #expect(changed["status"] == "enabled")
            #expect(Self.date(changed["created_at"]) == createdAt)
            #expect(Self.date(changed["updated_at"]) == harness.clock.now)

            let cleared = try await harness.send(client, .patch, "/v1/endpoints/\(id)", body: ["description": .null, "rate_limit_per_s": .null])
            #expect(cleared.status == .ok, "\(Self.describe(cleared))")
            #expect(cleared["description"] == .null)
            #expect(cleared["rate_limit_per_s"] == .null)
            #expect(cleared["url"] == "https://hooks.example.com/new", "absent url stays")
            #expect(cleared["event_types"] == ["refund.*", "payout.paid"], "absent event_types stay")

            let unchanged = try await harness.send(client, .patch, "/v1/endpoints/\(id)", body: [:])
            #expect(unchanged.status == .ok)
            #expect(unchanged["url"] == "https://hooks.example.com/new")
            #expect(unchanged["description"] == .null)

            let everything = try await harness.send(client, .patch, "/v1/endpoints/\(id)", body: ["event_types": []])
            #expect(everything["event_types"] == [], "an empty list subscribes to every type")

            let read = try await harness.send(client, .get, "/v1/endpoints/\(id)")
            #expect(read["url"] == "https://hooks.example.com/new")
            #expect(read["description"] == .null)
            #expect(read["rate_limit_per_s"] == .null)
            #expect(read["event_types"] == [])
        }
    }

    @Test("pause sets status paused; resume sets enabled and also re-enables a disabled endpoint, clearing disabled_reason and failing_since")
    func pauseAndResume() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x")
            harness.clock.advance(by: .seconds(3))
            let paused = try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/pause")
            #expect(paused.status == .ok, "\(Self.describe(paused))")
            #expect(Self.keys(paused) == Self.endpointFields)
            #expect(paused["status"] == "paused")
            #expect(Self.date(paused["updated_at"]) == harness.clock.now)
            #expect(try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")["status"] == "paused")

            let resumed = try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/resume")
            #expect(resumed.status == .ok)
            #expect(resumed["status"] == "enabled")

            // As the dispatcher leaves it after a 410 or days of failures.
            let failingSince = harness.clock.now.addingTimeInterval(-86_400)
            try await harness.postgres.query(
                """
                UPDATE notification.endpoints SET status = 'disabled', disabled_reason = 'the endpoint answered 410 Gone',
                    failing_since = \(failingSince) WHERE id = \(endpoint.id)
                """)
            let disabled = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")
            #expect(disabled["status"] == "disabled")
            #expect(disabled["disabled_reason"] == "the endpoint answered 410 Gone")
            #expect(Self.date(disabled["failing_since"]) == failingSince)

            let reenabled = try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/resume")
            #expect(reenabled.status == .ok)
            #expect(reenabled["status"] == "enabled")
            #expect(reenabled["disabled_reason"] == .null)
            #expect(reenabled["failing_since"] == .null)
            let read = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")
            #expect(read["status"] == "enabled")
            #expect(read["disabled_reason"] == .null)
            #expect(read["failing_since"] == .null)
        }
    }

    @Test("rotate-secret returns a new whsec_ secret and previous_secret_expires_at = now + grace (default 24 h); grace outside 0...604800 is 422")
    func rotateSecret() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x")
            harness.clock.advance(by: .seconds(100))
            let now = harness.clock.now
            let path = "/v1/endpoints/\(endpoint.id)/rotate-secret"

            let rotated = try await harness.send(client, .post, path)
            #expect(rotated.status == .ok, "\(Self.describe(rotated))")
            #expect(Self.keys(rotated) == ["secret", "previous_secret_expires_at"])
            let secret = rotated["secret"]?.stringValue
            #expect(Self.isSecret(secret))
            #expect(secret != endpoint.secret)
            #expect(Self.date(rotated["previous_secret_expires_at"]) == now.addingTimeInterval(86_400))

            for grace in [60, 0, 604_800] {
                let answer = try await harness.send(client, .post, path, body: ["grace_seconds": .integer(Int64(grace))])
                #expect(answer.status == .ok, "grace \(grace): \(Self.describe(answer))")
                #expect(Self.date(answer["previous_secret_expires_at"]) == now.addingTimeInterval(TimeInterval(grace)), "grace \(grace)")
                #expect(Self.isSecret(answer["secret"]?.stringValue))
            }
            let empty = try await harness.send(client, .post, path, body: [:])
            #expect(empty.status == .ok, "an empty object takes the default grace")
            #expect(Self.date(empty["previous_secret_expires_at"]) == now.addingTimeInterval(86_400))

            let before = try await harness.count("SELECT count(*) FROM notification.endpoint_secrets WHERE endpoint_id = \(endpoint.id)")
            for grace in [-1, 604_801] {
                let answer = try await harness.send(client, .post, path, body: ["grace_seconds": .integer(Int64(grace))])
                #expect(answer.status == .unprocessableContent, "grace \(grace): \(Self.describe(answer))")
                #expect(answer.errorCode == "validation_failed")
                #expect(answer["error"]?["details"]?["field"] == "grace_seconds")
            }
            #expect(
                try await harness.count("SELECT count(*) FROM notification.endpoint_secrets WHERE endpoint_id = \(endpoint.id)") == before,
                "a refused rotation adds no secret")
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM notification.endpoint_secrets WHERE endpoint_id = \(endpoint.id) AND expires_at IS NULL") == 1,
                "exactly one secret signs without an end")
        }
    }

    @Test("DELETE answers 204, the endpoint is gone (404) with its secrets, deliveries and attempts; other endpoints keep theirs")
    func delete() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let doomed = try await harness.createEndpoint(client, url: "https://hooks.example.com/doomed")
            let other = try await harness.createEndpoint(client, url: "https://hooks.example.com/other")
            try await harness.fanOut([try Self.event("booking.confirmed", at: harness.clock.now.addingTimeInterval(1))])
            #expect(try await Self.deliveries(harness, to: doomed.id) == 1)
            try await harness.postgres.query(
                """
                INSERT INTO notification.attempts (delivery_id, attempted_at, status_code, latency_ms)
                SELECT id, \(harness.clock.now), 500, 12 FROM notification.deliveries
                """)

            let deleted = try await harness.send(client, .delete, "/v1/endpoints/\(doomed.id)")
            #expect(deleted.status == .noContent, "\(Self.describe(deleted))")
            let gone = try await harness.send(client, .get, "/v1/endpoints/\(doomed.id)")
            #expect(gone.status == .notFound)
            #expect(gone.errorCode == "not_found")
            let again = try await harness.send(client, .delete, "/v1/endpoints/\(doomed.id)")
            #expect(again.status == .notFound)
            #expect(try await harness.send(client, .get, "/v1/endpoints/\(doomed.id)/deliveries").status == .notFound)

            #expect(try await Self.deliveries(harness, to: doomed.id) == 0)
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoint_secrets WHERE endpoint_id = \(doomed.id)") == 0)
            #expect(
                try await harness.count(
                    """
                    SELECT count(*) FROM notification.attempts a
                    WHERE NOT EXISTS (SELECT 1 FROM notification.deliveries d WHERE d.id = a.delivery_id)
                    """
                )
                    == 0)
            #expect(try await harness.count("SELECT count(*) FROM notification.attempts") == 1, "the other endpoint's attempt stays")
            #expect(try await Self.deliveries(harness, to: other.id) == 1)
            #expect(Self.ids(try await harness.send(client, .get, "/v1/endpoints")) == [other.id.uuidString.lowercased()])
        }
    }

    // MARK: Subscriptions (the fan-out)

    @Test("a booking.* subscription gets booking events but not refund, payout or other families")
    func prefixSubscription() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x", eventTypes: ["booking.*"])
            let at = harness.clock.now.addingTimeInterval(1)
            try await harness.fanOut(try Self.deliverableTypes.map { try Self.event($0, at: at) })
            #expect(try await Self.deliveries(harness, to: endpoint.id, type: "booking.confirmed") == 1)
            #expect(try await Self.deliveries(harness, to: endpoint.id, type: "booking.cancelled") == 1)
            #expect(try await Self.deliveries(harness, to: endpoint.id, type: "booking.expired") == 1)
            #expect(try await Self.deliveries(harness, to: endpoint.id, type: "refund.succeeded") == 0)
            #expect(try await Self.deliveries(harness, to: endpoint.id) == 3, "only the three booking types")
        }
    }

    @Test("empty or absent event_types get every deliverable type, an exact type only that type, and '*' everything deliverable")
    func allAndExactSubscriptions() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let empty = try await harness.createEndpoint(client, url: "https://hooks.example.com/empty", eventTypes: [])
            let absent = try await harness.createEndpoint(client, url: "https://hooks.example.com/absent")
            let star = try await harness.createEndpoint(client, url: "https://hooks.example.com/star", eventTypes: ["*"])
            let exact = try await harness.createEndpoint(client, url: "https://hooks.example.com/exact", eventTypes: ["refund.succeeded"])
            let at = harness.clock.now.addingTimeInterval(1)
            try await harness.fanOut(try Self.deliverableTypes.map { try Self.event($0, at: at) })
            for endpoint in [empty, absent, star] {
                #expect(try await Self.deliveries(harness, to: endpoint.id) == Self.deliverableTypes.count)
                for type in Self.deliverableTypes { #expect(try await Self.deliveries(harness, to: endpoint.id, type: type) == 1, "\(type)") }
            }
            #expect(try await Self.deliveries(harness, to: exact.id) == 1)
            #expect(try await Self.deliveries(harness, to: exact.id, type: "refund.succeeded") == 1)
        }
    }

    @Test("booking.requested, payment.requested, payment.intent_created and payment.* outcomes are never fanned out, not even to '*' or booking.*")
    func undeliverableTypesAreNeverFannedOut() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            _ = try await harness.createEndpoint(client, url: "https://hooks.example.com/all")
            _ = try await harness.createEndpoint(client, url: "https://hooks.example.com/star", eventTypes: ["*"])
            _ = try await harness.createEndpoint(client, url: "https://hooks.example.com/booking", eventTypes: ["booking.*"])
            let at = harness.clock.now.addingTimeInterval(1)
            try await harness.fanOut(try Self.undeliverableTypes.map { try Self.event($0, at: at) })
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries") == 0)
            #expect(try await harness.count("SELECT count(*) FROM notification.events") == 0, "not even kept for replay")
            try await harness.fanOut([try Self.event("booking.confirmed", at: at)])
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries") == 3, "a deliverable event still reaches all three")
        }
    }

    @Test("payment.disputed and payment.dispute_closed reach '*' and payment.* subscribers; the other payment events still do not")
    func disputesAreDelivered() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let star = try await harness.createEndpoint(client, url: "https://hooks.example.com/star", eventTypes: ["*"])
            let payments = try await harness.createEndpoint(client, url: "https://hooks.example.com/payments", eventTypes: ["payment.*"])
            let bookings = try await harness.createEndpoint(client, url: "https://hooks.example.com/booking", eventTypes: ["booking.*"])
            let at = harness.clock.now.addingTimeInterval(1)
            try await harness.fanOut(try ["payment.disputed", "payment.dispute_closed", "payment.succeeded"].map { try Self.event($0, at: at) })
            #expect(try await Self.deliveries(harness, to: star.id) == 2)
            #expect(try await Self.deliveries(harness, to: payments.id, type: "payment.disputed") == 1)
            #expect(try await Self.deliveries(harness, to: payments.id, type: "payment.dispute_closed") == 1)
            #expect(try await Self.deliveries(harness, to: payments.id) == 2)
            #expect(try await Self.deliveries(harness, to: bookings.id) == 0)
        }
    }

    @Test("a paused endpoint gets no deliveries, and an endpoint created after an event occurred does not get that event")
    func pausedAndLateEndpoints() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let start = harness.clock.now
            let active = try await harness.createEndpoint(client, url: "https://hooks.example.com/active")
            let paused = try await harness.createEndpoint(client, url: "https://hooks.example.com/paused")
            #expect(try await harness.send(client, .post, "/v1/endpoints/\(paused.id)/pause").status == .ok)
            harness.clock.advance(by: .seconds(10))
            let late = try await harness.createEndpoint(client, url: "https://hooks.example.com/late")

            try await harness.fanOut([try Self.event("booking.confirmed", at: start.addingTimeInterval(5))])
            #expect(try await Self.deliveries(harness, to: active.id) == 1)
            #expect(try await Self.deliveries(harness, to: paused.id) == 0, "paused endpoints get nothing")
            #expect(try await Self.deliveries(harness, to: late.id) == 0, "the event occurred before the endpoint existed")

            // An event occurring after the late endpoint's creation reaches it.
            try await harness.fanOut([try Self.event("booking.cancelled", at: start.addingTimeInterval(11))])
            #expect(try await Self.deliveries(harness, to: late.id) == 1)
            #expect(try await Self.deliveries(harness, to: paused.id) == 0)
        }
    }

    // MARK: Bad input

    struct Refusal {
        let label: String
        let answer: Answer
        /// nil: any 4xx.
        let status: HTTPResponse.Status?
        let code: String?
        var field: String?
    }

    static func check(_ refusals: [Refusal]) {
        for refusal in refusals {
            let answer = refusal.answer
            let context = "\(refusal.label): \(describe(answer))"
            #expect((400..<500).contains(answer.status.code), "a 4xx, never a 5xx — \(context)")
            if let status = refusal.status { #expect(answer.status == status, "\(context)") }
            if let code = refusal.code { #expect(answer.errorCode == code, "\(context)") }
            if let field = refusal.field { #expect(answer["error"]?["details"]?["field"]?.stringValue == field, "\(context)") }
            #expect(answer["error"]?["code"]?.stringValue?.isEmpty == false, "error.code — \(context)")
            #expect(answer["error"]?["message"]?.stringValue?.isEmpty == false, "error.message — \(context)")
        }
    }

    @Test("bad bodies on create and PATCH answer 400 (malformed, wrong types, missing url) or 422 naming the field, never a 5xx, and change nothing")
    func badEndpointBodies() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x", eventTypes: ["booking.*"])
            let url: JSONValue = "https://hooks.example.com/y"
            let tooMany = JSONValue.array(Array(repeating: "booking.confirmed", count: 65))
            let longDescription = JSONValue.string(String(repeating: "d", count: 1_025))
            let patch = "/v1/endpoints/\(endpoint.id)"
            func create(_ body: JSONValue) async throws -> Answer { try await harness.send(client, .post, "/v1/endpoints", body: body) }
            func update(_ body: JSONValue) async throws -> Answer { try await harness.send(client, .patch, patch, body: body) }

            var refusals: [Refusal] = [
                .init(
                    label: "create malformed", answer: try await harness.send(client, .post, "/v1/endpoints", raw: "{\"url\":"), status: .badRequest,
                    code: "bad_request"),
                .init(
                    label: "create not an object", answer: try await harness.send(client, .post, "/v1/endpoints", raw: "[]"), status: .badRequest,
                    code: "bad_request"),
                .init(label: "create empty body", answer: try await harness.send(client, .post, "/v1/endpoints", raw: ""), status: nil, code: nil),
                .init(label: "create url: 5", answer: try await create(["url": 5]), status: .badRequest, code: "bad_request"),
                .init(label: "create url: null", answer: try await create(["url": .null]), status: nil, code: nil),
                .init(label: "create missing url", answer: try await create(["description": "x"]), status: nil, code: nil),
                .init(
                    label: "create event_types: \"x\"", answer: try await create(["url": url, "event_types": "x"]), status: .badRequest,
                    code: "bad_request"),
                .init(
                    label: "create event_types: [5]", answer: try await create(["url": url, "event_types": [5]]), status: .badRequest,
                    code: "bad_request"),
                .init(
                    label: "create rate fast", answer: try await create(["url": url, "rate_limit_per_s": "fast"]), status: .badRequest,
                    code: "bad_request"),
                .init(
                    label: "create rate 1.5", answer: try await create(["url": url, "rate_limit_per_s": .number(1.5)]), status: .badRequest,
                    code: "bad_request"),
                .init(
                    label: "create description: 5", answer: try await create(["url": url, "description": 5]), status: .badRequest, code: "bad_request"
                ),
                .init(
                    label: "create url not a URL", answer: try await create(["url": "not a url"]), status: .unprocessableContent, code: nil,
                    field: "url"),
                .init(label: "create empty url", answer: try await create(["url": ""]), status: .unprocessableContent, code: nil, field: "url"),
                .init(
                    label: "create booking.nope", answer: try await create(["url": url, "event_types": ["booking.nope"]]),
                    status: .unprocessableContent,
                    code: "validation_failed", field: "event_types"),
                .init(
                    label: "create foo.*", answer: try await create(["url": url, "event_types": ["foo.*"]]), status: .unprocessableContent,
                    code: "validation_failed", field: "event_types"),
                .init(
                    label: "create booking.requested", answer: try await create(["url": url, "event_types": ["booking.requested"]]),
                    status: .unprocessableContent, code: "validation_failed", field: "event_types"),
                .init(
                    label: "create payment.succeeded", answer: try await create(["url": url, "event_types": ["payment.succeeded"]]),
                    status: .unprocessableContent, code: "validation_failed", field: "event_types"),
                .init(
                    label: "create charge.*", answer: try await create(["url": url, "event_types": ["charge.*"]]), status: .unprocessableContent,
                    code: "validation_failed", field: "event_types"),
                .init(
                    label: "create rate 0", answer: try await create(["url": url, "rate_limit_per_s": 0]), status: .unprocessableContent,
                    code: "validation_failed", field: "rate_limit_per_s"),
                .init(
                    label: "create rate 10001", answer: try await create(["url": url, "rate_limit_per_s": 10_001]), status: .unprocessableContent,
                    code: "validation_failed", field: "rate_limit_per_s"),
                .init(
                    label: "create rate 2^40", answer: try await create(["url": url, "rate_limit_per_s": .integer(1 << 40)]),
                    status: .unprocessableContent, code: "validation_failed", field: "rate_limit_per_s"),
                .init(
                    label: "create description 1025", answer: try await create(["url": url, "description": longDescription]),
                    status: .unprocessableContent, code: "validation_failed", field: "description"),
                .init(
                    label: "create 65 event types", answer: try await create(["url": url, "event_types": tooMany]), status: .unprocessableContent,
                    code: "validation_failed", field: "event_types"),

                .init(
                    label: "patch malformed", answer: try await harness.send(client, .patch, patch, raw: "{\"url\""), status: .badRequest,
                    code: "bad_request"),
                .init(label: "patch url: 5", answer: try await update(["url": 5]), status: .badRequest, code: "bad_request"),
                .init(label: "patch event_types: \"x\"", answer: try await update(["event_types": "x"]), status: .badRequest, code: "bad_request"),
                .init(label: "patch rate fast", answer: try await update(["rate_limit_per_s": "fast"]), status: .badRequest, code: "bad_request"),
                .init(label: "patch description: 5", answer: try await update(["description": 5]), status: .badRequest, code: "bad_request"),
                .init(
                    label: "patch booking.nope", answer: try await update(["event_types": ["booking.nope"]]), status: .unprocessableContent,
                    code: "validation_failed", field: "event_types"),
                .init(
                    label: "patch foo.*", answer: try await update(["event_types": ["foo.*"]]), status: .unprocessableContent,
                    code: "validation_failed",
                    field: "event_types"),
                .init(
                    label: "patch rate 0", answer: try await update(["rate_limit_per_s": 0]), status: .unprocessableContent,
                    code: "validation_failed",
                    field: "rate_limit_per_s"),
                .init(
                    label: "patch rate 10001", answer: try await update(["rate_limit_per_s": 10_001]), status: .unprocessableContent,
                    code: "validation_failed", field: "rate_limit_per_s"),
                .init(
                    label: "patch description 1025", answer: try await update(["description": longDescription]), status: .unprocessableContent,
                    code: "validation_failed", field: "description"),
                .init(
                    label: "create ftp", answer: try await create(["url": "ftp://example.com"]), status: .unprocessableContent,
                    code: "endpoint_url_not_allowed", field: "url"),
                .init(
                    label: "patch url not a URL", answer: try await update(["url": "not a url"]), status: .unprocessableContent, code: nil,
                    field: "url"),
            ]
            let huge = "{\"url\":\"https://hooks.example.com/\(String(repeating: "x", count: 1_100_000))\"}"
            refusals.append(
                .init(
                    label: "create 1.1 MB body (over MAX_BODY_BYTES, 1 MiB)",
                    answer: try await harness.send(client, .post, "/v1/endpoints", raw: huge), status: .contentTooLarge,
                    code: "payload_too_large"))
            refusals.append(
                .init(
                    label: "patch 1.1 MB body", answer: try await harness.send(client, .patch, patch, raw: huge), status: .contentTooLarge,
                    code: "payload_too_large"))
            Self.check(refusals)

            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints") == 1, "no refused create stored an endpoint")
            let read = try await harness.send(client, .get, patch)
            #expect(read["url"] == "https://hooks.example.com/x")
            #expect(read["event_types"] == ["booking.*"])
            #expect(read["description"] == .null)
            #expect(read["rate_limit_per_s"] == .null)
        }
    }

    @Test("PATCH with more than 64 event_types is refused with 422 like create, also when the entries repeat, and leaves the subscriptions")
    func patchTooManyEventTypes() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x", eventTypes: ["booking.*"])
            let tooMany = JSONValue.array(Array(repeating: "booking.confirmed", count: 65))
            let created = try await harness.send(
                client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/y", "event_types": tooMany])
            #expect(created.status == .unprocessableContent, "create: \(Self.describe(created))")
            let patched = try await harness.send(client, .patch, "/v1/endpoints/\(endpoint.id)", body: ["event_types": tooMany])
            #expect(patched.status == .unprocessableContent, "PATCH follows the same rules (<= 64 items): \(Self.describe(patched))")
            #expect(patched.errorCode == "validation_failed")
            #expect(patched["error"]?["details"]?["field"] == "event_types")
            let read = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")
            #expect(read["event_types"] == ["booking.*"], "a refused PATCH changes nothing")
        }
    }

    @Test("text Postgres cannot store or count like Swift (NUL, 1024+ Unicode scalars in fewer characters) is refused with a 4xx, never a 5xx")
    func unstorableText() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x")
            // 600 characters, 1,200 Unicode scalars: within 1024 by Swift's count, beyond it by Postgres'.
            let combining = JSONValue.string(String(repeating: "e\u{301}", count: 600))
            let nul = JSONValue.string("before\u{0}after")
            let answers: [(String, Answer)] = [
                (
                    "create combining description",
                    try await harness.send(client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/y", "description": combining])
                ),
                (
                    "patch combining description",
                    try await harness.send(client, .patch, "/v1/endpoints/\(endpoint.id)", body: ["description": combining])
                ),
                (
                    "create NUL description",
                    try await harness.send(client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/y", "description": nul])
                ),
                ("patch NUL description", try await harness.send(client, .patch, "/v1/endpoints/\(endpoint.id)", body: ["description": nul])),
                ("create NUL url", try await harness.send(client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/a\u{0}b"])),
                (
                    "create NUL event type",
                    try await harness.send(
                        client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/y", "event_types": ["booking.confirmed\u{0}"]])
                ),
            ]
            for (label, answer) in answers {
                #expect((400..<500).contains(answer.status.code), "\(label): \(Self.describe(answer))")
                #expect(answer.errorCode != nil, "\(label): error body")
            }
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints") == 1)
        }
    }

    @Test("unknown and malformed ids in the path answer 404 not_found on every endpoint and delivery route")
    func unknownIDs() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let window: JSONValue = ["since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"]
            var refusals: [Refusal] = []
            for id in [UUID().uuidString.lowercased(), UUID().uuidString.uppercased(), "not-a-uuid", "1234"] {
                let base = "/v1/endpoints/\(id)"
                let calls: [(HTTPRequest.Method, String, JSONValue?)] = [
                    (.get, base, nil), (.patch, base, ["description": "x"]), (.post, base + "/pause", nil), (.post, base + "/resume", nil),
                    (.post, base + "/rotate-secret", nil), (.delete, base, nil), (.post, base + "/replay", window), (.get, base + "/deliveries", nil),
                    (.get, "/v1/deliveries/\(id)", nil), (.post, "/v1/deliveries/\(id)/retry", nil),
                ]
                for (method, path, body) in calls {
                    refusals.append(
                        .init(
                            label: "\(method) \(path)", answer: try await harness.send(client, method, path, body: body), status: .notFound,
                            code: "not_found"))
                }
            }
            Self.check(refusals)
        }
    }

    @Test("bad replay bodies, rotate bodies and list queries answer 400 or 422 with the error body, never a 5xx")
    func badReplayRotateAndQueries() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x")
            let replay = "/v1/endpoints/\(endpoint.id)/replay"
            let rotate = "/v1/endpoints/\(endpoint.id)/rotate-secret"
            let deliveries = "/v1/endpoints/\(endpoint.id)/deliveries"
            func post(_ path: String, _ body: JSONValue) async throws -> Answer { try await harness.send(client, .post, path, body: body) }
            func get(_ path: String) async throws -> Answer { try await harness.send(client, .get, path) }
            let since: JSONValue = "2026-01-01T00:00:00Z"
            let until: JSONValue = "2026-01-02T00:00:00Z"

            var refusals: [Refusal] = [
                .init(
                    label: "replay malformed", answer: try await harness.send(client, .post, replay, raw: "{"), status: .badRequest,
                    code: "bad_request"),
                .init(label: "replay no body", answer: try await harness.send(client, .post, replay), status: nil, code: nil),
                .init(label: "replay missing since", answer: try await post(replay, ["until": until]), status: nil, code: nil),
                .init(label: "replay missing until", answer: try await post(replay, ["since": since]), status: nil, code: nil),
                .init(
                    label: "replay since: 5", answer: try await post(replay, ["since": 5, "until": until]), status: .badRequest, code: "bad_request"),
                .init(
                    label: "replay since == until", answer: try await post(replay, ["since": since, "until": since]), status: .unprocessableContent,
                    code: "validation_failed", field: "until"),
                .init(
                    label: "replay since > until", answer: try await post(replay, ["since": until, "until": since]), status: .unprocessableContent,
                    code: "validation_failed", field: "until"),
                .init(
                    label: "replay since not RFC 3339", answer: try await post(replay, ["since": "yesterday", "until": until]),
                    status: .unprocessableContent, code: "validation_failed", field: "since"),
                .init(
                    label: "replay naive since", answer: try await post(replay, ["since": "2026-01-01T00:00:00", "until": until]),
                    status: .unprocessableContent, code: "validation_failed", field: "since"),
                .init(
                    label: "replay until not RFC 3339", answer: try await post(replay, ["since": since, "until": "2026-13-01T00:00:00Z"]),
                    status: .unprocessableContent, code: "validation_failed", field: "until"),
                .init(
                    label: "replay booking.nope", answer: try await post(replay, ["since": since, "until": until, "event_types": ["booking.nope"]]),
                    status: .unprocessableContent, code: "validation_failed", field: "event_types"),
                .init(
                    label: "replay event_types: \"x\"", answer: try await post(replay, ["since": since, "until": until, "event_types": "x"]),
                    status: .badRequest, code: "bad_request"),
                .init(
                    label: "replay dry_run: \"yes\"", answer: try await post(replay, ["since": since, "until": until, "dry_run": "yes"]),
                    status: .badRequest, code: "bad_request"),

                .init(
                    label: "rotate malformed", answer: try await harness.send(client, .post, rotate, raw: "{"), status: .badRequest,
                    code: "bad_request"),
                .init(label: "rotate grace \"x\"", answer: try await post(rotate, ["grace_seconds": "x"]), status: .badRequest, code: "bad_request"),
                .init(
                    label: "rotate grace -1", answer: try await post(rotate, ["grace_seconds": -1]), status: .unprocessableContent,
                    code: "validation_failed", field: "grace_seconds"),
                .init(
                    label: "rotate grace 604801", answer: try await post(rotate, ["grace_seconds": 604_801]), status: .unprocessableContent,
                    code: "validation_failed", field: "grace_seconds"),

                .init(
                    label: "deliveries status=bogus", answer: try await get(deliveries + "?status=bogus"), status: .badRequest, code: "bad_request"),
                .init(
                    label: "deliveries cursor=nonsense", answer: try await get(deliveries + "?cursor=nonsense"), status: .badRequest,
                    code: "invalid_cursor"),
                .init(label: "deliveries limit=0", answer: try await get(deliveries + "?limit=0"), status: .badRequest, code: "bad_request"),
                .init(label: "deliveries limit=501", answer: try await get(deliveries + "?limit=501"), status: .badRequest, code: "bad_request"),
                .init(label: "deliveries limit=x", answer: try await get(deliveries + "?limit=x"), status: .badRequest, code: "bad_request"),
                .init(
                    label: "deliveries event_type NUL", answer: try await get(deliveries + "?event_type=a%00b"), status: .badRequest,
                    code: "bad_request"),
                .init(label: "endpoints limit=0", answer: try await get("/v1/endpoints?limit=0"), status: .badRequest, code: "bad_request"),
                .init(label: "endpoints limit=501", answer: try await get("/v1/endpoints?limit=501"), status: .badRequest, code: "bad_request"),
                .init(
                    label: "endpoints cursor=nonsense", answer: try await get("/v1/endpoints?cursor=nonsense"), status: .badRequest,
                    code: "invalid_cursor"),
            ]
            for cursor in CraftedCursors.all {
                let escaped = cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor
                refusals.append(
                    .init(
                        label: "endpoints cursor \(cursor)", answer: try await get("/v1/endpoints?cursor=\(escaped)"), status: .badRequest,
                        code: "invalid_cursor"))
                refusals.append(
                    .init(
                        label: "deliveries cursor \(cursor)", answer: try await get(deliveries + "?cursor=\(escaped)"), status: .badRequest,
                        code: "invalid_cursor"))
            }
            Self.check(refusals)

            // Extreme but valid instants are a range like any other: answered, never a 5xx.
            let extreme = try await post(replay, ["since": "0000-01-01T00:00:00+23:59", "until": "9999-12-31T23:59:59.999-23:59", "dry_run": true])
            #expect(extreme.status == .ok || (400..<500).contains(extreme.status.code), "\(Self.describe(extreme))")
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries") == 0, "no refused replay queued anything")
            #expect(
                try await harness.count("SELECT count(*) FROM notification.endpoint_secrets WHERE endpoint_id = \(endpoint.id)") == 1,
                "no refused rotation added a secret")
        }
    }

    // MARK: Authentication

    @Test("every endpoint and delivery route answers 401 without Authorization and with a wrong token, and changes nothing")
    func adminTokenRequired() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x")
            try await harness.fanOut([try Self.event("booking.confirmed", at: harness.clock.now.addingTimeInterval(1))])
            let delivery = try #require(
                try await harness.postgres.query("SELECT id FROM notification.deliveries").first.map { try $0.decode(UUID.self, at: 0) })
            let base = "/v1/endpoints/\(endpoint.id)"
            let window: JSONValue = ["since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"]
            let calls: [(HTTPRequest.Method, String, JSONValue?)] = [
                (.post, "/v1/endpoints", ["url": "https://hooks.example.com/y"]), (.get, "/v1/endpoints", nil), (.get, base, nil),
                (.patch, base, ["description": "changed"]), (.post, base + "/pause", nil), (.post, base + "/resume", nil),
                (.post, base + "/rotate-secret", nil), (.post, base + "/replay", window), (.get, base + "/deliveries", nil), (.delete, base, nil),
                (.get, "/v1/deliveries/\(delivery)", nil), (.post, "/v1/deliveries/\(delivery)/retry", nil),
            ]
            for token in [nil, "wrong-token", "", NotificationHarness.adminToken + "x"] as [String?] {
                for (method, path, body) in calls {
                    let answer = try await harness.send(client, method, path, body: body, token: token)
                    let context = "\(method) \(path) with token \(token.map { "'\($0)'" } ?? "none"): \(Self.describe(answer))"
                    #expect(answer.status == .unauthorized, "\(context)")
                    #expect(answer.errorCode == "unauthorized", "\(context)")
                }
            }
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints") == 1)
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoint_secrets") == 1)
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries") == 1)
            let read = try await harness.send(client, .get, base)
            #expect(read["status"] == "enabled")
            #expect(read["description"] == .null)
        }
    }

    // MARK: Replay

    @Test("replay: a dry run counts without sending; a replay sends every matched event once more; events still pending are not queued twice")
    func replay() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run { client in
            let start = harness.clock.now
            let endpoint = try await harness.createEndpoint(client, url: receiver.url("/replay"))
            let events = try ["booking.confirmed", "booking.cancelled", "refund.succeeded"].enumerated().map { index, type in
                try Self.event(type, at: start.addingTimeInterval(TimeInterval(index + 1)))
            }
            let eventIDs = Set(events.map(\.id.description))
            try await harness.fanOut(events)
            #expect(await receiver.waitFor(3, at: "/replay").count == 3)
            #expect(
                try await harness.eventually {
                    try await harness.count("SELECT count(*) FROM notification.deliveries WHERE status = 'succeeded'") == 3
                })

            let path = "/v1/endpoints/\(endpoint.id)/replay"
            let window: [String: JSONValue] = [
                "since": .string(RFC3339.string(from: start)), "until": .string(RFC3339.string(from: start.addingTimeInterval(60))),
            ]
            var dryRun = window
            dryRun["dry_run"] = true
            let preview = try await harness.send(client, .post, path, body: .object(dryRun))
            #expect(preview.status == .ok, "\(Self.describe(preview))")
            #expect(Self.keys(preview) == ["matched", "queued"])
            #expect(preview["matched"]?.integerValue == 3)
            #expect(preview["queued"]?.integerValue == 0)
            try await Task.sleep(for: .seconds(1))
            #expect(receiver.requests("/replay").count == 3, "a dry run sends nothing")
            #expect(try await Self.deliveries(harness, to: endpoint.id) == 3, "a dry run queues nothing")

            let replayed = try await harness.send(client, .post, path, body: .object(window))
            #expect(replayed.status == .ok, "\(Self.describe(replayed))")
            #expect(replayed["matched"]?.integerValue == 3)
            #expect(replayed["queued"]?.integerValue == 3)
            #expect(await receiver.waitFor(6, at: "/replay").count == 6)
            #expect(
                try await harness.eventually {
                    try await harness.count("SELECT count(*) FROM notification.deliveries WHERE status = 'succeeded'") == 6
                })
            try await Task.sleep(for: .milliseconds(500))
            var perEvent = Dictionary(grouping: receiver.requests("/replay"), by: { $0.webhookID ?? "" }).mapValues(\.count)
            #expect(Set(perEvent.keys) == eventIDs)
            #expect(perEvent.values.allSatisfy { $0 == 2 }, "each event once more: \(perEvent)")
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries WHERE origin = 'replay'") == 3)
            let listed = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)/deliveries?limit=500")
            #expect(listed["deliveries"]?.arrayValue?.filter { $0["origin"] == "replay" }.count == 3)

            // Paused, the replayed deliveries stay pending; a second replay does not queue them twice.
            #expect(try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/pause").status == .ok)
            let first = try await harness.send(client, .post, path, body: .object(window))
            #expect(first["matched"]?.integerValue == 3)
            #expect(first["queued"]?.integerValue == 3)
            let second = try await harness.send(client, .post, path, body: .object(window))
            #expect(second.status == .ok)
            #expect(second["matched"]?.integerValue == 3)
            #expect(second["queued"]?.integerValue == 0, "events with a pending delivery are not queued again")
            #expect(try await harness.count("SELECT count(*) FROM notification.deliveries WHERE status = 'pending'") == 3)
            try await Task.sleep(for: .milliseconds(500))
            #expect(receiver.requests("/replay").count == 6, "nothing goes to a paused endpoint")

            #expect(try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/resume").status == .ok)
            #expect(await receiver.waitFor(9, at: "/replay").count == 9)
            #expect(
                try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.deliveries WHERE status = 'pending'") == 0 }
            )
            try await Task.sleep(for: .milliseconds(500))
            perEvent = Dictionary(grouping: receiver.requests("/replay"), by: { $0.webhookID ?? "" }).mapValues(\.count)
            #expect(perEvent.values.allSatisfy { $0 == 3 }, "each event exactly once per replay: \(perEvent)")
            #expect(receiver.requests().count == 9)
        }
    }

    static func expect(_ got: Replayed, _ expected: Replayed, _ note: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got == expected, "\(note.isEmpty ? "" : note + "; ")got \(got)", sourceLocation: sourceLocation)
    }

    /// A replay's answer: `matched` and `queued`.
    struct Replayed: Equatable, CustomStringConvertible {
        let matched: Int64?
        let queued: Int64?
        init(_ matched: Int64?, _ queued: Int64?) {
            self.matched = matched
            self.queued = queued
        }
        var description: String { "{matched: \(matched.map(String.init) ?? "nil"), queued: \(queued.map(String.init) ?? "nil")}" }
    }

    @Test("replay matches events in [since, until) of the endpoint's subscriptions; event_types narrows the match; only queued events are sent")
    func replayMatching() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let start = harness.clock.now
            let all = try await harness.createEndpoint(client, url: "https://hooks.example.com/all")
            let bookings = try await harness.createEndpoint(client, url: "https://hooks.example.com/bookings", eventTypes: ["booking.*"])
            let types = ["booking.confirmed", "booking.cancelled", "refund.succeeded", "payout.paid"]
            try await harness.fanOut(
                try types.enumerated().map { index, type in try Self.event(type, at: start.addingTimeInterval(TimeInterval(index + 1))) })
            try await harness.fanOut([try Self.event("payment.requested", at: start.addingTimeInterval(2))])

            func replay(
                _ endpoint: UUID, from: TimeInterval = 0, to: TimeInterval = 60, types: [String]? = nil, dryRun: Bool = true
            ) async throws
                -> Replayed
            {
                var body: [String: JSONValue] = [
                    "since": .string(RFC3339.string(from: start.addingTimeInterval(from))),
                    "until": .string(RFC3339.string(from: start.addingTimeInterval(to))), "dry_run": .bool(dryRun),
                ]
                if let types { body["event_types"] = .array(types.map(JSONValue.string)) }
                let answer = try await harness.send(client, .post, "/v1/endpoints/\(endpoint)/replay", body: .object(body))
                #expect(answer.status == .ok, "\(Self.describe(answer))")
                return Replayed(answer["matched"]?.integerValue, answer["queued"]?.integerValue)
            }

            Self.expect(try await replay(all.id), Replayed(4, 0), "every deliverable event; payment.requested never")
            Self.expect(try await replay(all.id, types: ["*"]), Replayed(4, 0), "")
            Self.expect(try await replay(bookings.id), Replayed(2, 0), "without event_types, the endpoint's own subscriptions")
            Self.expect(try await replay(all.id, types: ["booking.*"]), Replayed(2, 0), "")
            Self.expect(try await replay(all.id, types: ["refund.succeeded"]), Replayed(1, 0), "")
            Self.expect(try await replay(all.id, types: ["refund.*", "payout.*"]), Replayed(2, 0), "")
            Self.expect(try await replay(all.id, types: ["booking.expired"]), Replayed(0, 0), "")
            Self.expect(try await replay(all.id, from: 2, to: 4), Replayed(2, 0), "since inclusive, until exclusive")
            Self.expect(try await replay(all.id, from: 5, to: 60), Replayed(0, 0), "")

            // The fan-out's deliveries are still pending (no dispatcher): nothing is queued twice.
            Self.expect(try await replay(all.id, dryRun: false), Replayed(4, 0), "")
            try await harness.postgres.query(
                """
                UPDATE notification.deliveries
                SET status = 'succeeded', next_attempt_at = NULL, completed_at = \(harness.clock.now), attempt_count = 1
                """)
            Self.expect(try await replay(all.id, types: ["refund.*"], dryRun: false), Replayed(1, 1), "")
            let replayed = try await harness.postgres.query("SELECT event_type, status FROM notification.deliveries WHERE origin = 'replay'").map {
                "\(try $0.decode(String.self, at: 0)) \(try $0.decode(String.self, at: 1))"
            }
            #expect(replayed == ["refund.succeeded pending"])
            #expect(try await Self.deliveries(harness, to: bookings.id) == 2, "another endpoint's replay queues nothing for this one")
        }
    }
    @Test("replay's event_types only narrow the endpoint's subscriptions, never widen them: a booking.* endpoint gets no refund events by replay")
    func replayEventTypesNarrowSubscriptions() async throws {
        let harness = try await NotificationHarness.make(clock: Self.wholeSecondClock())
        try await harness.run(dispatching: false) { client in
            let start = harness.clock.now
            let bookings = try await harness.createEndpoint(client, url: "https://hooks.example.com/bookings", eventTypes: ["booking.*"])
            let types = ["booking.confirmed", "booking.cancelled", "refund.succeeded", "payout.paid"]
            try await harness.fanOut(
                try types.enumerated().map { index, type in try Self.event(type, at: start.addingTimeInterval(TimeInterval(index + 1))) })
            func replay(_ types: [String], dryRun: Bool = true) async throws -> Replayed {
                let body: JSONValue = [
                    "since": .string(RFC3339.string(from: start)), "until": .string(RFC3339.string(from: start.addingTimeInterval(60))),
                    "event_types": .array(types.map(JSONValue.string)), "dry_run": .bool(dryRun),
                ]
                let answer = try await harness.send(client, .post, "/v1/endpoints/\(bookings.id)/replay", body: body)
                #expect(answer.status == .ok, "\(Self.describe(answer))")
                return Replayed(answer["matched"]?.integerValue, answer["queued"]?.integerValue)
            }
            Self.expect(try await replay(["booking.confirmed"]), Replayed(1, 0), "narrowing within the subscriptions")
            Self.expect(try await replay(["refund.*"]), Replayed(0, 0), "refund events are outside the endpoint's booking.* subscription")
            Self.expect(try await replay(["booking.confirmed", "refund.succeeded"]), Replayed(1, 0), "")
            Self.expect(try await replay(["*"]), Replayed(2, 0), "'*' names everything, the subscription still limits it")
            Self.expect(try await replay(["refund.*", "payout.*"], dryRun: false), Replayed(0, 0), "")
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM notification.deliveries WHERE endpoint_id = \(bookings.id) AND event_type NOT LIKE 'booking.%'") == 0,
                "no delivery of a type the endpoint did not subscribe to")
        }
    }
}
