import Foundation
import Messaging
import Postgres
import SharedModel

/// A delivery as the API shows it.
struct DeliveryView: Sendable, Encodable {
    enum Status: String, Sendable, Codable, CaseIterable {
        case pending, succeeded, failed
    }

    let id: UUID
    let endpointID: UUID
    let eventID: UUID
    let eventType: String
    let aggregateID: String
    let sequence: Int64
    let status: Status
    let attemptCount: Int
    let nextAttemptAt: Date?
    let outOfOrder: Bool
    let lastStatusCode: Int?
    let lastError: String?
    let origin: String
    let createdAt: Date
    let completedAt: Date?
    /// Only in the single-delivery view.
    var attempts: [AttemptView]?

    enum CodingKeys: String, CodingKey {
        case id = "delivery_id"
        case endpointID = "endpoint_id"
        case eventID = "event_id"
        case eventType = "event_type"
        case aggregateID = "aggregate_id"
        case sequence, status
        case attemptCount = "attempt_count"
        case nextAttemptAt = "next_attempt_at"
        case outOfOrder = "out_of_order"
        case lastStatusCode = "last_status_code"
        case lastError = "last_error"
        case origin
        case createdAt = "created_at"
        case completedAt = "completed_at"
        case attempts
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercasedString, forKey: .id)
        try container.encode(endpointID.lowercasedString, forKey: .endpointID)
        try container.encode(eventID.lowercasedString, forKey: .eventID)
        try container.encode(eventType, forKey: .eventType)
        try container.encode(aggregateID, forKey: .aggregateID)
        try container.encode(sequence, forKey: .sequence)
        try container.encode(status, forKey: .status)
        try container.encode(attemptCount, forKey: .attemptCount)
        try container.encode(nextAttemptAt, forKey: .nextAttemptAt)
        try container.encode(outOfOrder, forKey: .outOfOrder)
        try container.encode(lastStatusCode, forKey: .lastStatusCode)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(origin, forKey: .origin)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(completedAt, forKey: .completedAt)
        try container.encodeIfPresent(attempts, forKey: .attempts)
    }
}

/// One attempt as the API shows it.
struct AttemptView: Sendable, Encodable {
    let attemptedAt: Date
    let statusCode: Int?
    let latencyMilliseconds: Int
    let error: String?
    let responseExcerpt: String?

    enum CodingKeys: String, CodingKey {
        case attemptedAt = "attempted_at"
        case statusCode = "status_code"
        case latencyMilliseconds = "latency_ms"
        case error
        case responseExcerpt = "response_excerpt"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(attemptedAt, forKey: .attemptedAt)
        try container.encode(statusCode, forKey: .statusCode)
        try container.encode(latencyMilliseconds, forKey: .latencyMilliseconds)
        try container.encode(error, forKey: .error)
        try container.encode(responseExcerpt, forKey: .responseExcerpt)
    }
}

/// What operators read and do with deliveries (the API's delivery routes).
extension DeliveryRepository {
    static let viewColumns: PostgresStatement = """
        SELECT id, endpoint_id, event_id, event_type, aggregate_id, sequence, status, attempt_count, next_attempt_at, out_of_order,
               last_status_code, last_error, origin, created_at, completed_at
        FROM notification.deliveries
        """

    static func view(_ row: PostgresRow) throws -> DeliveryView {
        DeliveryView(
            id: try row.decode(UUID.self, at: 0), endpointID: try row.decode(UUID.self, at: 1), eventID: try row.decode(UUID.self, at: 2),
            eventType: try row.decode(String.self, at: 3), aggregateID: try row.decode(String.self, at: 4),
            sequence: try row.decode(Int64.self, at: 5), status: DeliveryView.Status(rawValue: try row.decode(String.self, at: 6)) ?? .pending,
            attemptCount: Int(try row.decode(Int32.self, at: 7)), nextAttemptAt: try row.decode(Date?.self, at: 8),
            outOfOrder: try row.decode(Bool.self, at: 9), lastStatusCode: try row.decode(Int32?.self, at: 10).map(Int.init),
            lastError: try row.decode(String?.self, at: 11), origin: try row.decode(String.self, at: 12),
            createdAt: try row.decode(Date.self, at: 13), completedAt: try row.decode(Date?.self, at: 14), attempts: nil)
    }

    struct Filter: Sendable {
        var status: DeliveryView.Status?
        var eventType: String?
    }

    /// An endpoint's deliveries, newest first.
    func deliveries(
        of endpoint: UUID, _ filter: Filter, after cursor: ListCursor?, limit: Int
    ) async throws -> (
        rows: [DeliveryView], nextCursor: String?
    ) {
        var query = NewestFirstQuery(select: Self.viewColumns, timeColumn: "created_at")
        query.equal("endpoint_id", endpoint)
        query.equal("status", filter.status?.rawValue)
        query.equal("event_type", filter.eventType)
        return try await query.page(
            on: postgres, after: cursor, limit: limit, decode: Self.view, position: { ListCursor(createdAt: $0.createdAt, id: $0.id) })
    }

    /// One delivery with its attempts, oldest first.
    func delivery(_ id: UUID) async throws -> DeliveryView? {
        try await postgres.withTransaction(readOnly: true) { transaction in
            guard var view = try transaction.query(Self.viewColumns + " WHERE id = \(id)").first.map(Self.view) else { return nil }
            view.attempts = try transaction.query(
                """
                SELECT attempted_at, status_code, latency_ms, error, response_excerpt FROM notification.attempts
                WHERE delivery_id = \(id) ORDER BY id
                """
            ).map { row in
                AttemptView(
                    attemptedAt: try row.decode(Date.self, at: 0), statusCode: try row.decode(Int32?.self, at: 1).map(Int.init),
                    latencyMilliseconds: Int(try row.decode(Int32.self, at: 2)), error: try row.decode(String?.self, at: 3),
                    responseExcerpt: try row.decode(String?.self, at: 4))
            }
            return view
        }
    }

    /// Makes a delivery due now. A failed or succeeded one is sent again (a failed one with a fresh
    /// schedule); one in flight is left alone. Nil when it does not exist. `audit`, when given and the
    /// delivery exists, is written in the same transaction (`requeued` in its details: false when in flight).
    func retry(_ id: UUID, now: Date, audit: AuditRecord? = nil) async throws -> DeliveryView? {
        try await postgres.withTransaction { transaction in
            let requeued = try transaction.query(
                """
                UPDATE notification.deliveries
                SET status = 'pending', next_attempt_at = \(now), completed_at = NULL, dead_letter_id = NULL,
                    attempt_count = CASE WHEN status = 'pending' THEN attempt_count ELSE 0 END
                WHERE id = \(id) AND NOT (status = 'pending' AND coalesce(lease_until > \(now), false))
                RETURNING endpoint_id
                """)
            guard let view = try transaction.query(Self.viewColumns + " WHERE id = \(id)").first.map(Self.view) else { return nil }
            try AuditLog.record(
                audit?.with(details: ["endpoint_id": .string(view.endpointID.lowercasedString), "requeued": .bool(!requeued.isEmpty)]),
                in: transaction)
            return view
        }
    }

    /// Queues again, to one endpoint, every received event that occurred in `[since, until)`, that the
    /// endpoint subscribes to and, when given, that `types` also names: `matched` counts them, `queued` the new deliveries
    /// (an event with a delivery to the endpoint still pending is not queued twice). A dry run queues
    /// nothing. Nil when the endpoint does not exist.
    /// `audit`, when given and the endpoint exists, is written in the same transaction with the counts.
    func replay(
        endpoint: UUID, since: Date, until: Date, types: [String]?, dryRun: Bool, now: Date, audit: AuditRecord? = nil
    ) async throws -> (matched: Int, queued: Int)? {
        try await postgres.withTransaction { transaction in
            guard let row = try transaction.query("SELECT event_types FROM notification.endpoints WHERE id = \(endpoint) FOR SHARE").first else {
                return nil
            }
            let subscriptions = try row.decode([String].self, at: 0)
            // `types` narrows the endpoint's subscriptions; it never adds a type the endpoint did not subscribe to.
            var matched: PostgresStatement = """
                SELECT ev.event_id, ev.event_type, ev.producer, ev.aggregate_id, ev.sequence FROM notification.events ev
                WHERE ev.occurred_at >= \(since) AND ev.occurred_at < \(until)
                  AND \(EndpointSubscriptionSQL.matches(type: "ev.event_type", subscriptions: "\(subscriptions)"))
                """
            if let types, !types.isEmpty {
                matched.append(" AND \(EndpointSubscriptionSQL.matches(type: "ev.event_type", subscriptions: "\(types)"))")
            }
            let counted = try transaction.query("SELECT count(*) FROM (\(matched)) AS m")
            let total = Int(try counted[0].decode(Int64.self, at: 0))
            func audited(queued: Int) throws {
                try AuditLog.record(
                    audit?.with(details: [
                        "since": .string(RFC3339.string(from: since)), "until": .string(RFC3339.string(from: until)), "dry_run": .bool(dryRun),
                        "matched": .integer(Int64(total)), "queued": .integer(Int64(queued)),
                    ]), in: transaction)
            }
            guard !dryRun else {
                try audited(queued: 0)
                return (total, 0)
            }
            let inserted = try transaction.query(
                """
                INSERT INTO notification.deliveries
                    (id, endpoint_id, event_id, event_type, producer, aggregate_id, sequence, origin, status, next_attempt_at, created_at)
                SELECT messaging.uuid_v7(), \(endpoint), m.event_id, m.event_type, m.producer, m.aggregate_id, m.sequence, 'replay', 'pending',
                       \(now), \(now)
                FROM (\(matched)) AS m
                WHERE NOT EXISTS (SELECT 1 FROM notification.deliveries d
                                  WHERE d.endpoint_id = \(endpoint) AND d.event_id = m.event_id AND d.status = 'pending')
                RETURNING 1
                """)
            try audited(queued: inserted.count)
            return (total, inserted.count)
        }
    }
}
