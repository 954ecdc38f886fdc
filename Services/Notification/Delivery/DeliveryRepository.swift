import Foundation
import Messaging
import Postgres
import SharedModel

/// A delivery a worker claimed: what it needs to send one attempt.
struct ClaimedDelivery: Sendable {
    let id: UUID
    let endpointID: UUID
    let eventID: UUID
    let eventType: String
    /// The number of the attempt about to be made (1 for the first).
    let attempt: Int
    /// The envelope's JSON, byte for byte as on every attempt.
    let body: [UInt8]
    /// The claim's lease; recording an outcome checks it is still this worker's.
    let leaseUntil: Date
    let outOfOrder: Bool
    /// Claimed again after an earlier claim's lease ran out (its worker died or hung): the receiver may
    /// have seen this attempt's predecessor.
    let reclaimed: Bool
}

/// An endpoint as a worker sends to it.
struct DeliveryTarget: Sendable {
    let id: UUID
    let url: String
    let rateLimitPerSecond: Int?
    let failingSince: Date?
    /// The sealed secrets that sign now, oldest first.
    let sealedSecrets: [Data]
}

/// One finished attempt and what follows it.
struct AttemptRecord: Sendable {
    let delivery: ClaimedDelivery
    let attemptedAt: Date
    let latency: Duration
    let outcome: AttemptOutcome
    /// The first KiB of the answer's body, when there was one.
    let responseExcerpt: String?
    let decision: DeliverySchedule.Decision

    var error: String? {
        switch outcome {
        case .delivered: nil
        case .refused(let status, _): "the endpoint answered \(status)"
        case .unreachable(let error): error
        }
    }
}

/// The dead letter of a delivery that used up its attempts: consumer `notification-delivery:<endpoint
/// id>`, so one event failing at two endpoints makes two entries, and an operator can list one
/// endpoint's. Replaying it (API or `dlq replay`) queues the delivery again with a fresh schedule.
enum DeliveryFailureDeadLetter {
    static let consumerPrefix = "notification-delivery:"

    static func consumer(endpoint: UUID) -> String { consumerPrefix + endpoint.lowercasedString }

    static func endpoint(ofConsumer consumer: String) -> UUID? {
        guard consumer.hasPrefix(consumerPrefix) else { return nil }
        return UUID(uuidString: String(consumer.dropFirst(consumerPrefix.count)))
    }
}

/// `notification.deliveries`, `notification.attempts` and `notification.events`: the only SQL about
/// deliveries.
struct DeliveryRepository: Sendable {
    let postgres: PostgresClient

    struct ClaimLimits: Sendable {
        /// The most deliveries to claim.
        var count: Int
        /// The most deliveries in flight to one endpoint (leased, across every worker).
        var perEndpoint: Int
        var lease: Duration
        /// A delivery older than this no longer waits for earlier ones of its aggregate.
        var orderWait: Duration
    }

    /// Claims due deliveries: pending, due, not leased (or the lease ran out: a crashed worker's), to an
    /// enabled endpoint with a free slot of its `perEndpoint` (per endpoint, its earliest due ones, found
    /// by index probes, so one endpoint's backlog does not make every claim scan it), and not behind an
    /// earlier pending one of its aggregate to the same endpoint (unless it has waited `orderWait`: then it goes, flagged
    /// `out_of_order`). Rows locked by another claimer are skipped. Returns the claims and their
    /// endpoints.
    ///
    /// The claim runs without bitmap scans. Every delivery is updated twice (leased, then finished),
    /// and each update leaves the old row version's entries in the partial indexes until vacuum: under
    /// load `deliveries_leased` held about 730-1,000 entries per endpoint with a lease in the future,
    /// of which 2-4 were live. A bitmap scan visits the heap for every one of them on every claim
    /// (3,600-4,800 buffers and 6-11 ms per claim, 0.7 of a core of Postgres at 1,500 deliveries/s);
    /// a plain index scan marks the dead ones it meets, so the next claims skip them (under 500
    /// buffers and 1 ms). The count of leased deliveries stops at `perEndpoint`, all the claim needs.
    ///
    /// It also runs without sequential scans, hash joins and merge joins: a claim touches at most
    /// `count` deliveries, each found through an index, so its cost must not grow with the table. With
    /// statistics taken during a backlog (many pending rows), Postgres estimated 77 due deliveries per
    /// endpoint and the full `count`, and chose hash joins that read all of `notification.deliveries`
    /// twice per claim; with statistics from a table of a few pages, a sequential scan per endpoint to
    /// count its leases. Which plan a session got depended on when `ANALYZE` last ran: in the
    /// benchmark's shared cluster 486 of the 561 claims that took over 5 ms read the whole table, and
    /// Postgres spent 1.5-4 times the CPU per delivery. And without JIT: the one sequential scan left
    /// (of the few endpoints, which no index filters by status) now costs 10^10 to the planner, far
    /// over `jit_above_cost`, and compiling the plan's 76 functions made every claim take 0.5-0.8 s.
    ///
    /// The claim also commits without waiting for its WAL to reach the disk (`synchronous_commit` off
    /// for this transaction): a lease is a reservation, not an outcome. If Postgres crashes before the
    /// flush, the deliveries come back unleased and are sent again after the restart, as after a crash
    /// of this process mid-attempt (a `webhook-id` may arrive twice, as Standard Webhooks allows). An
    /// attempt's record commits synchronously, and its flush covers every earlier commit, the lease's
    /// included, so a recorded outcome never rests on a lost lease.
    func claim(_ limits: ClaimLimits, now: Date) async throws -> (deliveries: [ClaimedDelivery], targets: [UUID: DeliveryTarget]) {
        let leaseUntil = now.adding(limits.lease)
        let orderCutoff = now.subtracting(limits.orderWait)
        return try await postgres.withTransaction { transaction in
            let claimed = try transaction.pipeline([
                """
                SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
                       set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
                       set_config('jit', 'off', true), set_config('synchronous_commit', 'off', true)
                """,
                """
                WITH chosen AS (
                    SELECT due.id, due.next_attempt_at
                    FROM notification.endpoints e
                    CROSS JOIN LATERAL (
                        SELECT count(*) AS leased FROM (
                            SELECT FROM notification.deliveries l
                            WHERE l.endpoint_id = e.id AND l.status = 'pending' AND l.lease_until IS NOT NULL AND l.lease_until > \(now)
                            LIMIT \(limits.perEndpoint)
                        ) leased_rows
                    ) busy
                    CROSS JOIN LATERAL (
                        SELECT d.id, d.next_attempt_at FROM notification.deliveries d
                        WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= \(now)
                          AND (d.lease_until IS NULL OR d.lease_until <= \(now))
                          AND (d.created_at <= \(orderCutoff) OR NOT EXISTS (
                              SELECT 1 FROM notification.deliveries p
                              WHERE p.endpoint_id = d.endpoint_id AND p.producer = d.producer AND p.aggregate_id = d.aggregate_id
                                AND p.status = 'pending' AND p.sequence < d.sequence))
                        ORDER BY d.next_attempt_at, d.sequence
                        LIMIT greatest(\(limits.perEndpoint) - busy.leased, 0)
                    ) due
                    WHERE e.status = 'enabled'
                    ORDER BY due.next_attempt_at LIMIT \(limits.count)
                ), locked AS (
                    SELECT id, lease_until AS previous_lease FROM notification.deliveries WHERE id IN (SELECT id FROM chosen)
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE notification.deliveries d
                SET lease_until = \(leaseUntil),
                    out_of_order = d.out_of_order OR EXISTS (
                        SELECT 1 FROM notification.deliveries p
                        WHERE p.endpoint_id = d.endpoint_id AND p.producer = d.producer AND p.aggregate_id = d.aggregate_id
                          AND p.status = 'pending' AND p.sequence < d.sequence)
                FROM locked l, notification.events ev
                WHERE d.id = l.id AND ev.event_id = d.event_id
                RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.attempt_count, ev.body, d.out_of_order, l.previous_lease IS NOT NULL
                """,
            ])
            let deliveries = try claimed[1].map { row in
                ClaimedDelivery(
                    id: try row.decode(UUID.self, at: 0), endpointID: try row.decode(UUID.self, at: 1), eventID: try row.decode(UUID.self, at: 2),
                    eventType: try row.decode(String.self, at: 3), attempt: Int(try row.decode(Int32.self, at: 4)) + 1,
                    body: Array(try row.decode(Data.self, at: 5)), leaseUntil: leaseUntil, outOfOrder: try row.decode(Bool.self, at: 6),
                    reclaimed: try row.decode(Bool.self, at: 7))
            }
            guard !deliveries.isEmpty else { return ([], [:]) }
            let endpointIDs = Array(Set(deliveries.map(\.endpointID)))
            let secretRows = try transaction.query(
                """
                SELECT endpoint_id, sealed FROM notification.endpoint_secrets
                WHERE endpoint_id = ANY(\(endpointIDs)) AND (expires_at IS NULL OR expires_at > \(now))
                ORDER BY endpoint_id, position
                """)
            var secrets: [UUID: [Data]] = [:]
            for row in secretRows { secrets[try row.decode(UUID.self, at: 0), default: []].append(try row.decode(Data.self, at: 1)) }
            let endpointRows = try transaction.query(
                "SELECT id, url, rate_limit_per_s, failing_since FROM notification.endpoints WHERE id = ANY(\(endpointIDs))")
            var targets: [UUID: DeliveryTarget] = [:]
            for row in endpointRows {
                let id = try row.decode(UUID.self, at: 0)
                targets[id] = DeliveryTarget(
                    id: id, url: try row.decode(String.self, at: 1), rateLimitPerSecond: try row.decode(Int32?.self, at: 2).map(Int.init),
                    failingSince: try row.decode(Date?.self, at: 3), sealedSecrets: secrets[id] ?? [])
            }
            return (deliveries, targets)
        }
    }

    /// Gives claims back unsent (shutdown, or the endpoint's rate limit): due again at `dueAt`, not
    /// counted as attempts.
    func release(_ deliveries: [ClaimedDelivery], dueAt: Date) async throws {
        guard !deliveries.isEmpty else { return }
        try await postgres.query(
            """
            UPDATE notification.deliveries SET lease_until = NULL, next_attempt_at = \(dueAt)
            WHERE id = ANY(\(deliveries.map(\.id))) AND status = 'pending' AND lease_until = ANY(\(deliveries.map(\.leaseUntil)))
            """)
    }

    /// Records an attempt and applies its decision: the delivery's next state, the endpoint's health
    /// (disabling it emits `notification.endpoint_disabled`), and for a delivery out of attempts a
    /// `failure` dead letter. The delivery changes only while this worker's lease holds (a worker
    /// that outlived its lease records the attempt and nothing else).
    ///
    /// Several records share one transaction (one commit, one WAL flush), in delivery id order so
    /// concurrent writers lock rows in the same order. The common ones (a success or a retry, the
    /// endpoint healthy or failing) are one statement each, all sent in one round trip; the rest (a
    /// delivery out of attempts, an endpoint to disable) follow one statement at a time, as each
    /// step needs the one before.
    func record(_ records: [AttemptRecord], clock: WallClock) async throws {
        let ordered = records.sorted { $0.delivery.id.uuidString < $1.delivery.id.uuidString }
        var quick: [PostgresStatement] = []
        var rest: [AttemptRecord] = []
        for record in ordered {
            if let statement = Self.recording(record) {
                quick.append(statement)
            } else {
                rest.append(record)
            }
        }
        try await postgres.withTransaction { [quick, rest] transaction in
            if !quick.isEmpty { _ = try transaction.pipeline(quick) }
            for record in rest { try self.apply(record, clock: clock, in: transaction) }
        }
    }

    /// The one statement that records a success or a retry whose endpoint change is healthy or failing
    /// (nil for any other record): the attempt, unless an operator deleted the delivery meanwhile; the
    /// delivery's next state while this worker's lease holds; and, only if the delivery changed, the
    /// endpoint's health. What ``apply(_:clock:in:)`` does for these, without waiting for each answer.
    private static func recording(_ record: AttemptRecord) -> PostgresStatement? {
        guard record.decision.next != .failed, let health = healthChange(record.decision.endpoint) else { return nil }
        return """
            WITH attempt AS (\(attemptInsert(record))), updated AS (\(deliveryUpdate(record)))
            UPDATE notification.endpoints SET \(health) AND id = \(record.delivery.endpointID) AND EXISTS (SELECT FROM updated)
            """
    }

    /// Inserts the attempt's row, unless the delivery is gone (an operator deleted its endpoint).
    private static func attemptInsert(_ record: AttemptRecord) -> PostgresStatement {
        let delivery = record.delivery
        return """
            INSERT INTO notification.attempts (delivery_id, attempted_at, status_code, latency_ms, error, response_excerpt)
            SELECT \(delivery.id), \(record.attemptedAt), \(record.outcome.statusCode.map(Int32.init)),
                   \(Int32(clamping: record.latency.wholeMilliseconds)), \(record.error), \(record.responseExcerpt)
            WHERE EXISTS (SELECT FROM notification.deliveries WHERE id = \(delivery.id))
            """
    }

    /// Moves the delivery to its next state, only while this worker's lease holds; returns its
    /// `created_at` when it did.
    private static func deliveryUpdate(_ record: AttemptRecord) -> PostgresStatement {
        let delivery = record.delivery
        let finishedAt = record.attemptedAt.adding(record.latency)
        let next: PostgresStatement
        switch record.decision.next {
        case .succeeded:
            next = "status = 'succeeded', next_attempt_at = NULL, completed_at = \(finishedAt), last_error = NULL"
        case .retry(let at):
            next = "next_attempt_at = \(at), last_error = \(record.error)"
        case .failed:
            next = "status = 'failed', next_attempt_at = NULL, completed_at = \(finishedAt), last_error = \(record.error)"
        }
        return """
            UPDATE notification.deliveries
            SET attempt_count = \(Int32(delivery.attempt)), lease_until = NULL, last_status_code = \(record.outcome.statusCode.map(Int32.init)),
                \(next)
            WHERE id = \(delivery.id) AND status = 'pending' AND lease_until = \(delivery.leaseUntil)
            RETURNING created_at
            """
    }

    /// A healthy or failing endpoint's change as `<assignment> WHERE <condition>`, for an
    /// `UPDATE notification.endpoints SET` that adds `AND id = ...`; nil for a disable.
    private static func healthChange(_ change: DeliverySchedule.EndpointChange) -> PostgresStatement? {
        switch change {
        case .healthy: "failing_since = NULL WHERE failing_since IS NOT NULL"
        case .failing(let since): "failing_since = \(since) WHERE failing_since IS NULL"
        case .disable: nil
        }
    }

    private func apply(_ record: AttemptRecord, clock: WallClock, in transaction: PostgresTransaction) throws {
        let delivery = record.delivery
        // An operator may have deleted the endpoint (and with it the delivery) meanwhile: nothing to
        // record then. The key-share lock keeps it from being deleted until this commits.
        let exists = try transaction.query("SELECT 1 FROM notification.deliveries WHERE id = \(delivery.id) FOR KEY SHARE")
        guard !exists.isEmpty else { return }
        try transaction.query(Self.attemptInsert(record))
        guard let row = try transaction.query(Self.deliveryUpdate(record)).first else { return }
        if record.decision.next == .failed {
            let envelope = try EventEnvelope(jsonData: Data(delivery.body))
            let deadLetter = try DeadLetterStore.record(
                kind: .failure, stream: Streams.stream(for: envelope.producer),
                consumer: DeliveryFailureDeadLetter.consumer(endpoint: delivery.endpointID), envelope: envelope,
                error: "not delivered after \(delivery.attempt) attempts; last: \(record.error ?? "unknown")", attempts: delivery.attempt,
                firstFailedAt: try row.decode(Date.self, at: 0), clock: clock, in: transaction)
            try transaction.query("UPDATE notification.deliveries SET dead_letter_id = \(deadLetter) WHERE id = \(delivery.id)")
        }
        try apply(
            record.decision.endpoint, to: delivery.endpointID, at: record.attemptedAt.adding(record.latency),
            correlationID: "delivery-\(delivery.id)", in: transaction)
    }

    private func apply(
        _ change: DeliverySchedule.EndpointChange, to endpoint: UUID, at now: Date, correlationID: String, in transaction: PostgresTransaction
    ) throws {
        if let health = Self.healthChange(change) {
            try transaction.query("UPDATE notification.endpoints SET \(health) AND id = \(endpoint)")
            return
        }
        guard case .disable(let reason, let since) = change else { return }
        let disabled = try transaction.query(
            """
            UPDATE notification.endpoints
            SET status = 'disabled', disabled_reason = \(reason), failing_since = coalesce(failing_since, \(since)), updated_at = \(now)
            WHERE id = \(endpoint) AND status = 'enabled'
            RETURNING failing_since
            """)
        guard let row = disabled.first else { return }
        let event = EndpointDisabled(endpointID: endpoint, reason: reason, failingSince: try row.decode(Date?.self, at: 0))
        try Outbox.enqueue(
            drafts: Outbox.drafts([event], producer: .notification, correlationID: correlationID, occurredAt: now), after: [], in: transaction)
    }

    /// Queues again every failed delivery whose dead letter an operator replayed, with a fresh
    /// schedule. Returns how many.
    func requeueReplayedDeadLetters(now: Date) async throws -> Int {
        try await postgres.query(
            """
            UPDATE notification.deliveries d
            SET status = 'pending', attempt_count = 0, next_attempt_at = \(now), lease_until = NULL, completed_at = NULL, dead_letter_id = NULL
            FROM messaging.dead_letters l
            WHERE d.status = 'failed' AND d.dead_letter_id = l.id AND l.status = 'replayed'
            RETURNING d.id
            """
        ).count
    }
}
