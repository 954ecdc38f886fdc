import Foundation
import Metrics
import Postgres
import SharedModel

/// `messaging.dead_letters`, the source of truth for what could not be processed (`failure`) or needs a
/// person (`review`). Every new entry is announced on `stream:dead-letters` through the outbox and
/// counted in metrics. Entries are never deleted silently: they change status (`open`, `replayed`,
/// `resolved`, `discarded`) with the operator and a note.
public struct DeadLetterStore: Sendable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case failure
        case review
    }

    public enum Status: String, Sendable, Codable, CaseIterable {
        case open
        case replayed
        case resolved
        case discarded
    }

    /// One dead letter.
    public struct Entry: Sendable, Encodable, Equatable {
        public let id: UUID
        public let kind: Kind
        public let stream: String
        public let consumer: String
        public let eventID: UUID
        public let eventType: String
        public let aggregateID: String
        public let envelope: JSONValue
        public let error: String
        public let attempts: Int
        public let firstFailedAt: Date
        public let lastFailedAt: Date
        public let status: Status
        public let resolutionNote: String?
        public let operatorName: String?
        public let statusChangedAt: Date?
        public let createdAt: Date

        enum CodingKeys: String, CodingKey {
            case id, kind, stream, consumer
            case eventID = "event_id"
            case eventType = "event_type"
            case aggregateID = "aggregate_id"
            case envelope, error, attempts
            case firstFailedAt = "first_failed_at"
            case lastFailedAt = "last_failed_at"
            case status
            case resolutionNote = "resolution_note"
            case operatorName = "operator"
            case statusChangedAt = "status_changed_at"
            case createdAt = "created_at"
        }

        /// Encodes with lower-case UUIDs (the wire convention) and explicit nulls.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id.lowercasedString, forKey: .id)
            try container.encode(kind, forKey: .kind)
            try container.encode(stream, forKey: .stream)
            try container.encode(consumer, forKey: .consumer)
            try container.encode(eventID.lowercasedString, forKey: .eventID)
            try container.encode(eventType, forKey: .eventType)
            try container.encode(aggregateID, forKey: .aggregateID)
            try container.encode(envelope, forKey: .envelope)
            try container.encode(error, forKey: .error)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(RFC3339.string(from: firstFailedAt), forKey: .firstFailedAt)
            try container.encode(RFC3339.string(from: lastFailedAt), forKey: .lastFailedAt)
            try container.encode(status, forKey: .status)
            try container.encode(resolutionNote, forKey: .resolutionNote)
            try container.encode(operatorName, forKey: .operatorName)
            try container.encode(statusChangedAt.map(RFC3339.string(from:)), forKey: .statusChangedAt)
            try container.encode(RFC3339.string(from: createdAt), forKey: .createdAt)
        }
    }

    /// What to list or replay. Every field narrows the selection; nil means any.
    public struct Filter: Sendable {
        public var kind: Kind?
        public var status: Status?
        public var stream: String?
        public var consumer: String?
        public var eventType: String?
        /// The event's aggregate, e.g. a booking id.
        public var aggregateID: String?
        public var from: Date?
        public var until: Date?

        public init(
            kind: Kind? = nil, status: Status? = nil, stream: String? = nil, consumer: String? = nil, eventType: String? = nil,
            aggregateID: String? = nil, from: Date? = nil, until: Date? = nil
        ) {
            self.kind = kind
            self.status = status
            self.stream = stream
            self.consumer = consumer
            self.eventType = eventType
            self.aggregateID = aggregateID
            self.from = from
            self.until = until
        }
    }

    /// A page of entries, newest first, and the cursor of the next page (nil on the last).
    public struct Page: Sendable {
        public let entries: [Entry]
        public let nextCursor: String?
    }

    /// What an operator action did.
    public enum Outcome: Sendable, Equatable {
        case done
        /// The entry is not `open` (already replayed, resolved or discarded): nothing changed.
        case unchanged(Status)
        /// Only `failure` entries can be replayed.
        case notReplayable
        case notFound
    }

    private let postgres: PostgresClient
    private let clock: WallClock

    /// `clock` dates operator actions.
    public init(postgres: PostgresClient, clock: WallClock = .system) {
        self.postgres = postgres
        self.clock = clock
        // Every kind at zero from the start, so `increase(dead_letters_recorded_total[...])` sees the first entry.
        _ = Self.recordedCounters
    }

    /// `dead_letters_recorded_total{kind}`, one per kind.
    static let recordedCounters = Kind.allCases.reduce(into: [Kind: Counter]()) { counters, kind in
        counters[kind] = Counter(label: "dead_letters_recorded_total", dimensions: [("kind", kind.rawValue)])
    }

    /// Records a dead letter inside the caller's transaction and announces it on `stream:dead-letters`.
    /// An entry that is already open for the same consumer, event and kind is updated (attempts, error,
    /// last failure) instead of duplicated. Handlers use this with `.review` for business anomalies.
    /// `clock` dates the failure, the entry and its announcement.
    @discardableResult
    public static func record(
        kind: Kind,
        stream: String,
        consumer: String,
        envelope: EventEnvelope,
        error: String,
        attempts: Int,
        firstFailedAt: Date,
        clock: WallClock = .system,
        in transaction: PostgresTransaction
    ) throws -> UUID {
        let id = UUID.timeOrdered()
        let now = clock.now()
        let rows = try transaction.query(
            """
            INSERT INTO messaging.dead_letters
                (id, kind, stream, consumer, event_id, event_type, aggregate_id, envelope, error, attempts, first_failed_at, last_failed_at,
                 created_at)
            VALUES (\(id), \(kind.rawValue), \(stream), \(consumer), \(envelope.id.uuid), \(envelope.type), \(envelope.aggregateID),
                    \(PostgresJSONB(try envelope.jsonData())), \(error), \(Int32(clamping: attempts)), \(firstFailedAt), \(now), \(now))
            ON CONFLICT (consumer, event_id, kind) WHERE status = 'open'
            DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, last_failed_at = EXCLUDED.last_failed_at
            RETURNING id, (xmax = 0) AS inserted
            """
        )
        let storedID = try rows[0].decode(UUID.self, at: 0)
        if try rows[0].decode(Bool.self, at: 1) {
            let announcement = DeadLetterRecorded(
                deadLetterID: storedID, kind: kind.rawValue, stream: stream, consumer: consumer, eventID: envelope.id.uuid,
                eventType: envelope.type, eventAggregateID: envelope.aggregateID, error: error
            )
            let draft = try EventEnvelope(
                event: announcement, occurredAt: now, sequence: 0, correlationID: envelope.correlationID,
                causationID: envelope.id.description, producer: EventProducer(rawValue: consumer)
            )
            _ = try Outbox.append(draft, stream: Streams.deadLetters, in: transaction)
            recordedCounters[kind]?.increment()
        }
        return storedID
    }

    // MARK: Reading

    /// Entries matching `filter`, newest first, `limit` per page.
    public func list(_ filter: Filter, cursor: String? = nil, limit: Int = 50) async throws -> Page {
        var position: ListCursor?
        if let cursor {
            guard let parsed = ListCursor(cursor) else { throw InvalidCursor() }
            position = parsed
        }
        var query = NewestFirstQuery(select: Self.selectColumns, timeColumn: "created_at")
        query.equal("kind", filter.kind?.rawValue)
        query.equal("status", filter.status?.rawValue)
        query.equal("stream", filter.stream)
        query.equal("consumer", filter.consumer)
        query.equal("event_type", filter.eventType)
        query.equal("aggregate_id", filter.aggregateID)
        query.time(from: filter.from, until: filter.until)
        let page = try await query.page(
            on: postgres, after: position, limit: max(1, min(limit, 500)), decode: Self.entry,
            position: { ListCursor(createdAt: $0.createdAt, id: $0.id) })
        return Page(entries: page.rows, nextCursor: page.nextCursor)
    }

    /// One entry.
    public func entry(id: UUID) async throws -> Entry? {
        let rows = try await postgres.sharedQuery(Self.selectColumns + " WHERE id = \(id)")
        return try rows.first.map(Self.entry)
    }

    // MARK: Operator actions

    /// Publishes the original envelope again through the outbox (same event id, so consumers that
    /// already applied it skip it) and marks the entry `replayed`. Replaying an entry that is not open
    /// changes nothing. `audit`, when given, is written in the same transaction when the entry is replayed.
    public func replay(id: UUID, operatorName: String, audit: AuditRecord? = nil) async throws -> Outcome {
        let now = clock.now()
        return try await postgres.withTransaction { transaction in
            let rows = try transaction.query("SELECT kind, status, stream, envelope::text FROM messaging.dead_letters WHERE id = \(id) FOR UPDATE")
            guard let row = rows.first else { return .notFound }
            let status = Status(rawValue: try row.decode(String.self, at: 1)) ?? .open
            guard status == .open else { return .unchanged(status) }
            guard try row.decode(String.self, at: 0) == Kind.failure.rawValue else { return .notReplayable }
            let envelope = try EventEnvelope(jsonData: Data(try row.decode(String.self, at: 3).utf8))
            try Outbox.appendExisting(envelope, stream: try row.decode(String.self, at: 2), in: transaction)
            // The consumer counts attempts afresh for the replayed delivery.
            try transaction.query(
                """
                DELETE FROM messaging.attempts
                WHERE event_id = \(envelope.id.uuid) AND consumer = (SELECT consumer FROM messaging.dead_letters WHERE id = \(id))
                """)
            try transaction.query(
                "UPDATE messaging.dead_letters SET status = 'replayed', operator = \(operatorName), status_changed_at = \(now) WHERE id = \(id)")
            try AuditLog.record(
                audit?.with(details: ["stream": .string(try row.decode(String.self, at: 2)), "event_type": .string(envelope.type)]), clock: clock,
                in: transaction)
            return .done
        }
    }

    /// Replays every open `failure` entry matching `filter`; returns how many were replayed. Each replay
    /// is its own transaction with its own audit entry (`audit` with the entry's id as target).
    public func replayAll(_ filter: Filter, operatorName: String, audit: AuditRecord? = nil) async throws -> Int {
        var selection = filter
        selection.status = .open
        selection.kind = .failure
        var replayed = 0
        var cursor: String?
        repeat {
            let page = try await list(selection, cursor: cursor, limit: 200)
            for entry in page.entries
            where try await replay(id: entry.id, operatorName: operatorName, audit: audit?.with(targetID: entry.id.lowercasedString)) == .done {
                replayed += 1
            }
            cursor = page.nextCursor
        } while cursor != nil
        return replayed
    }

    /// Closes an open entry as handled by a person, with a note.
    public func resolve(id: UUID, note: String, operatorName: String, audit: AuditRecord? = nil) async throws -> Outcome {
        try await close(id: id, status: .resolved, note: note, operatorName: operatorName, audit: audit)
    }

    /// Closes an open entry as not to be processed, with the reason.
    public func discard(id: UUID, reason: String, operatorName: String, audit: AuditRecord? = nil) async throws -> Outcome {
        try await close(id: id, status: .discarded, note: reason, operatorName: operatorName, audit: audit)
    }

    private func close(id: UUID, status: Status, note: String, operatorName: String, audit: AuditRecord?) async throws -> Outcome {
        let now = clock.now()
        return try await postgres.withTransaction { transaction in
            let rows = try transaction.query("SELECT status FROM messaging.dead_letters WHERE id = \(id) FOR UPDATE")
            guard let row = rows.first else { return .notFound }
            let current = Status(rawValue: try row.decode(String.self, at: 0)) ?? .open
            guard current == .open else { return .unchanged(current) }
            try transaction.query(
                """
                UPDATE messaging.dead_letters SET status = \(status.rawValue), resolution_note = \(note), operator = \(operatorName),
                    status_changed_at = \(now)
                WHERE id = \(id)
                """)
            try AuditLog.record(audit, clock: clock, in: transaction)
            return .done
        }
    }

    /// Open entries by kind, for metrics and reports.
    public func openCounts() async throws -> [Kind: Int] {
        let rows = try await postgres.query("SELECT kind, count(*) FROM messaging.dead_letters WHERE status = 'open' GROUP BY kind")
        var counts: [Kind: Int] = [:]
        for row in rows {
            if let kind = Kind(rawValue: try row.decode(String.self, at: 0)) { counts[kind] = try row.decode(Int.self, at: 1) }
        }
        return counts
    }

    static let selectColumns: PostgresStatement = """
        SELECT id, kind, stream, consumer, event_id, event_type, aggregate_id, envelope::text, error, attempts, first_failed_at,
               last_failed_at, status, resolution_note, operator, status_changed_at, created_at
        FROM messaging.dead_letters
        """

    static func entry(_ row: PostgresRow) throws -> Entry {
        Entry(
            id: try row.decode(UUID.self, at: 0),
            kind: Kind(rawValue: try row.decode(String.self, at: 1)) ?? .failure,
            stream: try row.decode(String.self, at: 2),
            consumer: try row.decode(String.self, at: 3),
            eventID: try row.decode(UUID.self, at: 4),
            eventType: try row.decode(String.self, at: 5),
            aggregateID: try row.decode(String.self, at: 6),
            envelope: try JSONDecoder.platform.decode(JSONValue.self, from: Data(try row.decode(String.self, at: 7).utf8)),
            error: try row.decode(String.self, at: 8),
            attempts: try row.decode(Int.self, at: 9),
            firstFailedAt: try row.decode(Date.self, at: 10),
            lastFailedAt: try row.decode(Date.self, at: 11),
            status: Status(rawValue: try row.decode(String.self, at: 12)) ?? .open,
            resolutionNote: try row.decode(String?.self, at: 13),
            operatorName: try row.decode(String?.self, at: 14),
            statusChangedAt: try row.decode(Date?.self, at: 15),
            createdAt: try row.decode(Date.self, at: 16)
        )
    }
}
