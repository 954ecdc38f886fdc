import Foundation
import Logging
import Messaging
import Metrics
import Postgres
import ProviderAPI
import ServiceLifecycle
import SharedModel

/// Recovers provider events whose webhook never arrived (issue 18 item 4; Stripe's own advice: do not
/// rely on webhooks alone). Every `interval`:
///
/// 1. **Events.** Lists the provider's events created at or after the durable checkpoint minus
///    ``overlap`` (`GET /v1/events?created[gte]=...&limit=100`, newest first, paged with
///    `starting_after`) and stores each one not stored yet and older than ``settle`` (younger ones
///    may have their webhook on the way) through the webhook's own store-once path
///    (``ProviderEventStore/store(_:delivery:correlationID:)``): its domain event goes to the outbox in
///    the same transaction, exactly as if the webhook had come. The checkpoint then moves to the
///    newest `created` seen, but never past `now - settle` (`payments.provider_sweeps`). The first
///    sweep starts ``lookback`` back.
/// 2. **Intents.** Payment intents older than ``intentAge`` (and younger than ``lookback``) without a
///    stored final event (`payment_intent.succeeded` or `.canceled`) are read directly
///    (`GET /v1/payment_intents/{id}`, each at most once an hour, 50 per sweep). One that succeeded or
///    was canceled has its event looked up by type and stored like any other; if the provider lists no
///    such event, the sweeper logs an error and counts `provider_intents_unreported_total` for an
///    operator, and invents nothing.
///
/// Recovered events are counted in `provider_events_recovered_total` and logged with their id. Several
/// instances may sweep at once: storing is idempotent, so that costs only provider calls.
struct ProviderEventSweeper: Service, CustomStringConvertible {
    let api: StripeAPIClient
    let store: ProviderEventStore
    let postgres: PostgresClient
    let logger: Logger
    var clock: WallClock = .system
    /// `PROVIDER_SWEEP_INTERVAL` (default 5 min).
    var interval: Duration = .seconds(300)
    /// `PROVIDER_SWEEP_LOOKBACK` (default 72 h): how far back the first sweep lists, and the oldest
    /// intent asked about.
    var lookback: Duration = .seconds(72 * 3600)
    /// `PROVIDER_SWEEP_INTENT_AGE` (default 20 min): how long an intent may go without a final event
    /// before it is read directly (a booking's payment window and grace are 17 min by default).
    var intentAge: Duration = .seconds(1200)
    /// `PROVIDER_SWEEP_SETTLE` (default 60 s): how old an event must be before the sweep stores it;
    /// a younger one's webhook may still be on its way (the provider's first attempt comes within
    /// seconds).
    var settle: Duration = .seconds(60)
    /// Listed again below the checkpoint: `created` has whole seconds, and events of one second may
    /// be listed before all of them exist.
    var overlap: Duration = .seconds(60)
    var intentsPerSweep = 50

    /// What ServiceLifecycle logs for it: no client or key.
    var description: String { "ProviderEventSweeper(interval: \(interval), lookback: \(lookback), settle: \(settle))" }

    static let recovered = Counter(label: "provider_events_recovered_total")
    static let unreported = Counter(label: "provider_intents_unreported_total")
    static let sweeps = Counter(label: "provider_sweeps_total")

    /// What one sweep did.
    struct Sweep: Sendable, Equatable {
        var listed = 0
        var recovered = 0
        var intentsChecked = 0
        var unreported = 0
    }

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "the provider event sweep failed; retrying at the next interval") {
            try await sweep()
        }
    }

    @discardableResult
    func sweep() async throws -> Sweep {
        let startedAt = clock.now()
        var result = Sweep()
        let stored = try await postgres.query("SELECT checkpoint_created FROM payments.provider_sweeps WHERE provider = 'stripe'")
        let checkpoint = try stored.first?.decode(Int64.self, at: 0) ?? Int64(startedAt.adding(.zero - lookback).timeIntervalSince1970)
        let settledBy = Int64(startedAt.adding(.zero - settle).timeIntervalSince1970)
        let newest = try await ingestEvents(
            createdAtLeast: max(0, checkpoint - Int64(overlap.timeInterval)), settledBy: settledBy, type: nil, into: &result)
        let next = max(checkpoint, min(newest ?? checkpoint, settledBy))
        try await postgres.query(
            """
            INSERT INTO payments.provider_sweeps
                (provider, checkpoint_created, last_started_at, last_finished_at, last_listed, last_recovered)
            VALUES ('stripe', \(next), \(startedAt), \(clock.now()), \(Int32(clamping: result.listed)), \(Int32(clamping: result.recovered)))
            ON CONFLICT (provider) DO UPDATE SET checkpoint_created = GREATEST(payments.provider_sweeps.checkpoint_created, EXCLUDED.checkpoint_created),
                last_started_at = EXCLUDED.last_started_at, last_finished_at = EXCLUDED.last_finished_at,
                last_listed = EXCLUDED.last_listed, last_recovered = EXCLUDED.last_recovered
            """)
        try await checkIntents(into: &result)
        Self.sweeps.increment()
        if result.recovered > 0 || result.unreported > 0 {
            logger.warning(
                "provider event sweep recovered events no webhook delivered",
                metadata: [
                    "listed": "\(result.listed)", "recovered": "\(result.recovered)", "intents_checked": "\(result.intentsChecked)",
                    "unreported_intents": "\(result.unreported)",
                ])
        } else {
            logger.debug("provider event sweep: nothing missing", metadata: ["listed": "\(result.listed)"])
        }
        return result
    }

    /// Lists every event created at or after `createdAtLeast` (of `type` when given) and stores those
    /// not stored yet and created at or before `settledBy`; returns the newest `created` of those.
    private func ingestEvents(createdAtLeast: Int64, settledBy: Int64, type: String?, into result: inout Sweep) async throws -> Int64? {
        var newest: Int64?
        var startingAfter: String?
        var hasMore = true
        while hasMore {
            var parameters: [(name: String, value: String)] = [("created[gte]", String(createdAtLeast)), ("limit", "100")]
            if let type { parameters.append(("type", type)) }
            if let startingAfter { parameters.append(("starting_after", startingAfter)) }
            let page = try await api.get("/v1/events", parameters: parameters)
            guard let events = page["data"]?.arrayValue else { throw ProviderCallError.unavailable("the provider's event list lacks data") }
            hasMore = page["has_more"]?.boolValue ?? false
            let ids = events.compactMap { $0["id"]?.stringValue }
            guard let last = ids.last else { break }
            startingAfter = last
            result.listed += events.count
            let known = Set(
                try await postgres.query(
                    "SELECT provider_event_id FROM payments.provider_events WHERE provider = 'stripe' AND provider_event_id = ANY(\(ids)::text[])"
                ).map { try $0.decode(String.self, at: 0) })
            for event in events {
                guard let created = event["created"]?.integerValue, created <= settledBy else { continue }
                newest = max(newest ?? created, created)
                guard let id = event["id"]?.stringValue, !known.contains(id) else { continue }
                if try await ingest(event, id: id) { result.recovered += 1 }
            }
        }
        return newest
    }

    /// Stores one listed event as a webhook delivery of it would be; true when it was stored now.
    private func ingest(_ event: JSONValue, id: String) async throws -> Bool {
        let body = Array(try JSONEncoder.platform.encode(event))
        let receivedAt = clock.now()
        let delivery = ProviderDelivery(source: .stripe, deliveryID: nil, body: body, signedAt: receivedAt, receivedAt: receivedAt)
        let record: ProviderEventRecord
        do {
            record = try StripeEventReader.read(body, receivedAt: receivedAt)
        } catch {
            let stored = try await store.storeMalformed(delivery, reason: error.reason)
            logger.error(
                "a provider event listed by the sweep is unreadable; kept for inspection",
                metadata: ["provider_event_id": "\(id)", "stored_id": "\(stored)", "reason": "\(error.reason)"])
            return false
        }
        guard case .stored(_, let status) = try await store.store(record, delivery: delivery, correlationID: "sweep-\(id)") else { return false }
        Self.recovered.increment()
        logger.warning(
            "recovered a provider event no webhook delivered",
            metadata: [
                "provider_event_id": "\(id)", "event_type": "\(record.eventType)", "status": "\(status.rawValue)",
                "booking_id": "\(record.bookingID.map { "\($0)" } ?? "-")",
            ])
        return true
    }

    /// Reads intents that have gone without a final event for ``intentAge`` directly from the provider.
    private func checkIntents(into result: inout Sweep) async throws {
        let now = clock.now()
        let rows = try await postgres.query(
            """
            UPDATE payments.payment_intents SET status_checked_at = \(now)
            WHERE provider_ref IN (
                SELECT i.provider_ref FROM payments.payment_intents i
                WHERE i.created_at <= \(now.adding(.zero - intentAge)) AND i.created_at > \(now.adding(.zero - lookback))
                  AND (i.status_checked_at IS NULL OR i.status_checked_at <= \(now.adding(.seconds(-3600))))
                  AND NOT EXISTS (
                    SELECT 1 FROM payments.provider_events e
                    WHERE e.provider_ref = i.provider_ref
                      AND e.event_type IN ('payment_intent.succeeded', 'payment_intent.canceled') AND e.status = 'accepted')
                ORDER BY i.created_at LIMIT \(intentsPerSweep)
                FOR UPDATE SKIP LOCKED)
            RETURNING provider_ref, created_at
            """)
        for row in rows {
            let reference = try row.decode(String.self, at: 0)
            let createdAt = try row.decode(Date.self, at: 1)
            result.intentsChecked += 1
            let intent = try await api.get("/v1/payment_intents/\(reference)", parameters: [])
            let type: String
            switch intent["status"]?.stringValue {
            case "succeeded": type = "payment_intent.succeeded"
            case "canceled": type = "payment_intent.canceled"
            default: continue
            }
            var found = Sweep()
            _ = try await ingestEvents(
                createdAtLeast: Int64(createdAt.timeIntervalSince1970) - Int64(overlap.timeInterval), settledBy: Int64(now.timeIntervalSince1970),
                type: type, into: &found)
            result.listed += found.listed
            result.recovered += found.recovered
            let stored = try await postgres.query(
                """
                SELECT 1 FROM payments.provider_events
                WHERE provider_ref = \(reference) AND event_type = \(type) AND status = 'accepted'
                """)
            if stored.isEmpty {
                result.unreported += 1
                Self.unreported.increment()
                logger.error(
                    "the provider reports a payment intent final, but lists no event of it: act on it by hand",
                    metadata: ["provider_ref": "\(reference)", "status": "\(intent["status"]?.stringValue ?? "-")"])
            }
        }
    }
}
