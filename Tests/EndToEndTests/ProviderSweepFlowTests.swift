import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import Messaging
import NIOCore
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@Suite("Missed-webhook sweeper over real processes: booking, payments-webhook and the provider simulator")
struct ProviderSweepFlowTests {
    @Test(
        "the simulator drops the payment_intent.succeeded webhook of 50 of 500 paid bookings: the sweep stores them, all 500 are confirmed within a sweep interval after they settle, each payment stored once, 50 counted recovered"
    )
    func droppedWebhooksAreRecovered() async throws {
        let interval = 2.0
        let settle = 3.0
        let settings = ["PROVIDER_SWEEP_INTERVAL": "\(Int(interval))s", "PROVIDER_SWEEP_SETTLE": "\(Int(settle))s"]
        try await PaymentsSystem.run(prefix: "e2e_sweep", payments: settings) { system in
            let (started, postgres) = (system.started, system.postgres)
            @Sendable func simulatorCall(_ method: HTTPRequest.Method, _ path: String, _ body: String = "{}") async throws -> (Int, JSONValue?) {
                try await system.simulatorCall(method, path, body)
            }
            func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
                try await system.waitUntil(what, timeout: timeout, condition)
            }

            let booking = try await BookingProcess.start(system)
            let event = try await booking.createEvent(seats: 500)
            let bookings = try await concurrently(Array(1...500)) { try await booking.book(event, seat: $0) }
            try await waitUntil("every booking's payment intent") {
                try await postgres.count("SELECT count(*) FROM booking.bookings WHERE payment_provider_ref IS NULL") == 0
            }
            let intents = try await postgres.query("SELECT payment_provider_ref FROM booking.bookings").map { try $0.decode(String.self, at: 0) }
            #expect(intents.count == 500)

            let (dropStatus, _) = try await simulatorCall(.post, "/simulator/webhook-drops", #"{"type":"payment_intent.succeeded","count":50}"#)
            #expect(dropStatus == 200)
            let deliveries = try await concurrently(intents) { intent in
                let (status, answer) = try await simulatorCall(.post, "/simulator/payment_intents/\(intent)/succeed")
                #expect(status == 200)
                return answer?["delivery"]?["dropped"]?.boolValue == true
            }
            let paidAt = ContinuousClock.now
            #expect(deliveries.filter { $0 }.count == 50)
            // The 450 delivered webhooks were stored before the simulator answered (the sweep may have
            // stored some of the 50 dropped ones meanwhile).
            #expect(try await postgres.count("SELECT count(*) FROM payments.provider_events WHERE event_type = 'payment_intent.succeeded'") >= 450)
            let (_, log) = try await simulatorCall(.get, "/simulator/events")
            let dropped = (log?.arrayValue ?? []).filter { $0["delivery"]?["dropped"]?.boolValue == true }.compactMap { $0["id"]?.stringValue }
            #expect(dropped.count == 50)

            try await waitUntil("500 bookings confirmed") {
                try await postgres.count("SELECT count(*) FROM booking.bookings WHERE status = 'confirmed'") == 500
            }
            let waited = ContinuousClock.now - paidAt
            // An event is stored by the first sweep after it is `settle` old: at most settle + interval,
            // plus the saga's work and seconds' rounding.
            #expect(waited < .seconds(settle + interval + 8), "confirmed \(waited) after the last payment")
            #expect(bookings.count == 500)
            #expect(
                try await postgres.count(
                    "SELECT count(*) FROM payments.provider_events WHERE event_type = 'payment_intent.succeeded' AND status = 'accepted'") == 500)
            #expect(
                try await postgres.count(
                    "SELECT count(DISTINCT provider_ref) FROM payments.provider_events WHERE event_type = 'payment_intent.succeeded'") == 500)
            #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payment.succeeded'") == 500)
            // The dropped events are stored once each, under their own provider event ids.
            #expect(
                try await postgres.count(
                    "SELECT count(*) FROM payments.provider_events WHERE provider_event_id = ANY(\(dropped)::text[]) AND status = 'accepted'") == 50)
            let metrics = await get("/metrics", port: started.payments.port)?.body ?? ""
            let recovered = metrics.split(separator: "\n").first { $0.hasPrefix("provider_events_recovered_total ") }
            #expect(recovered == "provider_events_recovered_total 50", "\(recovered.map(String.init) ?? "no provider_events_recovered_total")")
            // Later sweeps find nothing more to recover.
            try await Task.sleep(for: .seconds(interval * 2))
            #expect(
                await get("/metrics", port: started.payments.port)?.body.split(separator: "\n").first {
                    $0.hasPrefix("provider_events_recovered_total ")
                } == "provider_events_recovered_total 50")
            await booking.stop(signal: SIGTERM)
        }
    }
}

@Suite("Missed-webhook sweeper: intents read directly")
struct ProviderSweepIntentTests {
    static let settings = [
        "PROVIDER_SWEEP_INTERVAL": "1s", "PROVIDER_SWEEP_LOOKBACK": "1h", "PROVIDER_SWEEP_INTENT_AGE": "1s", "PROVIDER_SWEEP_SETTLE": "0s",
    ]

    /// A payment intent of `booking` at the simulator; its id.
    static func createIntent(_ booking: UUID, in system: PaymentsSystem) async throws -> String {
        let response = try await system.simulator.execute(
            .init(
                "/v1/payment_intents", method: .post,
                headers: [.authorization: "Bearer sk_test_e2e", .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "amount=1000&currency=eur&metadata%5Bbooking_id%5D=\(booking)")))
        return try #require(response.body.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0)) }?["id"]?.stringValue)
    }

    /// Records `intent` as the provider worker records one it created `age` ago, drops its next
    /// `payment_intent.succeeded` webhook and pays it with the event dated `created` (Unix seconds).
    static func payWithWebhookDropped(
        _ intent: String, of booking: UUID, recordedAgo age: TimeInterval, eventCreated created: Int, in system: PaymentsSystem
    ) async throws {
        try await system.postgres.query(
            """
            INSERT INTO payments.payment_intents (booking_id, provider, provider_ref, amount, currency, idempotency_key, created_at)
            VALUES (\(booking), 'stripe', \(intent), 1000, 'EUR', \("booking-\(booking)-payment"), \(Date().addingTimeInterval(-age)))
            """)
        #expect(try await system.simulatorCall(.post, "/simulator/webhook-drops", #"{"type":"payment_intent.succeeded","count":1}"#).0 == 200)
        let (paid, answer) = try await system.simulatorCall(.post, "/simulator/payment_intents/\(intent)/succeed", #"{"created":\#(created)}"#)
        #expect(paid == 200 && answer?["delivery"]?["dropped"] == true)
    }

    @Test(
        "an intent that succeeded with its webhook lost and its event older than the sweep's window: read directly, reported as unreported (error and metric), nothing invented"
    )
    func unreportedIntentIsFlagged() async throws {
        try await PaymentsSystem.run(prefix: "e2e_sweep_intent", payments: Self.settings) { system in
            let booking = UUID()
            let intent = try await Self.createIntent(booking, in: system)
            // Paid, but its event dates from 3 h ago: before the sweep's first window (1 h back).
            try await Self.payWithWebhookDropped(
                intent, of: booking, recordedAgo: 10, eventCreated: Int(Date().timeIntervalSince1970) - 3 * 3600, in: system)
            var unreported: Substring?
            try await system.waitUntil("the intent reported unreported", timeout: .seconds(20)) {
                unreported = await get("/metrics", port: system.started.payments.port)?.body.split(separator: "\n").first {
                    $0.hasPrefix("provider_intents_unreported_total ")
                }
                return unreported == "provider_intents_unreported_total 1"
            }
            #expect(
                try await system.postgres.count("SELECT count(*) FROM payments.payment_intents WHERE status_checked_at IS NOT NULL") == 1)
            #expect(try await system.postgres.count("SELECT count(*) FROM payments.provider_events WHERE provider_ref = \(intent)") == 0)
            #expect(system.started.payments.output.contains("lists no event of it"))
        }
    }

    @Test(
        "an intent that succeeded with its webhook lost and its event behind the events sweep's checkpoint: read directly, its event found by type and stored once, counted recovered"
    )
    func intentEventFoundByType() async throws {
        try await PaymentsSystem.run(prefix: "e2e_sweep_found", payments: Self.settings) { system in
            // Another payment's event, delivered now, moves the events sweep's checkpoint to now.
            let other = try await Self.createIntent(UUID(), in: system)
            #expect(try await system.simulatorCall(.post, "/simulator/payment_intents/\(other)/succeed").0 == 200)
            let now = Int64(Date().timeIntervalSince1970)
            try await system.waitUntil("the events sweep's checkpoint at the other payment's event", timeout: .seconds(20)) {
                try await system.postgres.count("SELECT count(*) FROM payments.provider_sweeps WHERE checkpoint_created >= \(now - 5)") == 1
            }
            // The intent, recorded 30 minutes ago and paid 20 minutes ago (its event's `created`), its
            // webhook dropped: older than the events sweep's window (checkpoint - 60 s), inside the
            // intent's (its creation - 60 s).
            let booking = UUID()
            let intent = try await Self.createIntent(booking, in: system)
            try await Self.payWithWebhookDropped(
                intent, of: booking, recordedAgo: 1800, eventCreated: Int(Date().timeIntervalSince1970) - 1200, in: system)

            try await system.waitUntil("the intent's event stored", timeout: .seconds(20)) {
                try await system.postgres.count(
                    """
                    SELECT count(*) FROM payments.provider_events
                    WHERE provider_ref = \(intent) AND event_type = 'payment_intent.succeeded' AND status = 'accepted'
                    """) == 1
            }
            #expect(
                try await system.postgres.count(
                    "SELECT count(*) FROM payments.payment_intents WHERE provider_ref = \(intent) AND status_checked_at IS NOT NULL") == 1)
            #expect(
                try await system.postgres.count(
                    """
                    SELECT count(*) FROM messaging.outbox WHERE event_type = 'payment.succeeded' AND aggregate_id = \(booking.uuidString.lowercased())
                    """) == 1)
            let metrics = await get("/metrics", port: system.started.payments.port)?.body.split(separator: "\n") ?? []
            #expect(metrics.contains("provider_events_recovered_total 1"), "\(metrics.filter { $0.hasPrefix("provider_") })")
            #expect(!metrics.contains { $0.hasPrefix("provider_intents_unreported_total ") && $0 != "provider_intents_unreported_total 0" })
        }
    }
}
