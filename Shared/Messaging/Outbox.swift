import Foundation
import Postgres
import SharedModel

/// When an event is appended (or any statement ending in ``whereOpen`` runs): only if an earlier
/// statement of the same transaction opened the gate named by `token`, by selecting ``opening`` -
/// typically in the `RETURNING` of an `INSERT ... ON CONFLICT DO NOTHING`, which returns (and so
/// opens) nothing on a conflict. The gate is a transaction-local setting, so it closes at commit or
/// rollback; a token unique to the event keeps gates of one transaction apart. Such conditions let a
/// transaction whose later writes depend on an earlier statement's outcome be sent whole, in one
/// round trip.
public struct OutboxCondition: Sendable {
    public let token: String

    public init(token: String) {
        self.token = token
    }

    /// The expression that opens the gate (select it, with the statement's other columns).
    public var opening: PostgresStatement { "set_config('outbox.gate', \(token), true)" }

    /// The expression that opens the gate when `predicate` holds, and closes it otherwise.
    public func opening(when predicate: PostgresStatement) -> PostgresStatement {
        "set_config('outbox.gate', CASE WHEN \(predicate) THEN \(token) ELSE '' END, true)"
    }

    /// The `WHERE` clause that holds only while the gate is open: it ends an `INSERT ... SELECT` that
    /// runs only then.
    public var whereOpen: PostgresStatement { "WHERE current_setting('outbox.gate', true) = \(token)" }
}

/// Writes events into `messaging.outbox` inside the caller's transaction, so a state change and the
/// events it causes commit together or not at all. Nothing is published to Redis here: the
/// ``OutboxRelay`` does that after commit.
public enum Outbox {
    /// Appends a typed event. Its `sequence` (per producer and aggregate, increasing from 1) is assigned
    /// in the same statement; the returned envelope carries it.
    @discardableResult
    public static func append<Event: DomainEvent>(
        _ event: Event,
        producer: EventProducer,
        correlationID: String,
        causationID: String? = nil,
        occurredAt: Date,
        in transaction: PostgresTransaction
    ) throws -> EventEnvelope {
        let draft = try EventEnvelope(
            event: event,
            occurredAt: occurredAt,
            sequence: 0,
            correlationID: correlationID,
            causationID: causationID,
            producer: producer
        )
        return try append(draft, stream: Streams.stream(for: producer), in: transaction)
    }

    /// Appends an existing envelope unchanged (its id and sequence kept), e.g. to replay a dead letter.
    /// Appending an event id that is already in the outbox changes nothing and returns false.
    @discardableResult
    public static func appendExisting(_ envelope: EventEnvelope, stream: String, in transaction: PostgresTransaction) throws -> Bool {
        OutboxRelay.localAppends.ring()
        let json = PostgresJSONB(try envelope.jsonData())
        let rows = try transaction.query(
            """
            INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
            VALUES (\(envelope.id.uuid), \(stream), \(envelope.producer.rawValue), \(envelope.aggregateID), \(max(1, envelope.sequence)),
                    \(envelope.type), \(json))
            ON CONFLICT (event_id) DO UPDATE SET published_at = NULL
            RETURNING position
            """
        )
        return !rows.isEmpty
    }

    /// Appends `events` (in order) after the caller's `statements`, all in one pipelined round trip
    /// inside `transaction`: the state change and the events it causes travel together. Returns the
    /// statements' results and the appended envelopes with their sequences.
    @discardableResult
    public static func append(
        _ events: [any DomainEvent],
        after statements: [PostgresStatement],
        producer: EventProducer,
        correlationID: String,
        causationID: String? = nil,
        occurredAt: Date,
        in transaction: PostgresTransaction
    ) throws -> (results: [PostgresRows], envelopes: [EventEnvelope]) {
        let drafts = try drafts(events, producer: producer, correlationID: correlationID, causationID: causationID, occurredAt: occurredAt)
        return try append(drafts: drafts, after: statements, in: transaction)
    }

    /// The envelopes of `events`, not yet sequenced, for ``append(drafts:after:onlyIf:in:)``,
    /// ``enqueue(drafts:after:in:)`` or ``statements(appending:onlyIf:)``.
    public static func drafts(
        _ events: [any DomainEvent], producer: EventProducer, correlationID: String, causationID: String? = nil, occurredAt: Date
    ) throws -> [EventEnvelope] {
        try events.map { event in
            try EventEnvelope(
                event: event, occurredAt: occurredAt, sequence: 0, correlationID: correlationID, causationID: causationID, producer: producer)
        }
    }

    /// Appends envelopes the caller built (so it can record their ids beside the state change) after
    /// `statements`, in one pipelined round trip inside `transaction`. Each goes to its producer's
    /// stream; its `sequence` is assigned here. Returns the statements' results and the sequenced
    /// envelopes.
    ///
    /// With `condition`, each event is appended only if the condition holds when its statement runs
    /// (e.g. the row the statements before tried to insert exists, so a conflict appends nothing); the
    /// envelopes returned are the ones appended.
    @discardableResult
    public static func append(
        drafts: [EventEnvelope], after statements: [PostgresStatement], onlyIf condition: OutboxCondition? = nil,
        in transaction: PostgresTransaction
    ) throws -> (results: [PostgresRows], envelopes: [EventEnvelope]) {
        let appends = try Self.statements(appending: drafts, onlyIf: condition)
        let results = try transaction.pipeline(statements + appends)
        let envelopes = try zip(drafts, results.suffix(drafts.count)).compactMap { draft, rows in
            rows.isEmpty ? nil : try sequenced(draft, rows: rows)
        }
        return (Array(results.prefix(statements.count)), envelopes)
    }

    /// ``append(drafts:after:onlyIf:in:)`` for a caller that reads neither the statements' results nor
    /// the events' sequences: all of it is queued on the transaction
    /// (``PostgresTransaction/enqueue(_:file:line:)``) and sent with its next round trip, usually its
    /// `COMMIT`, so a transaction that ends here commits in one round trip fewer. An error in any of it
    /// fails that round trip (the commit) and rolls the transaction back.
    public static func enqueue(drafts: [EventEnvelope], after statements: [PostgresStatement], in transaction: PostgresTransaction) throws {
        try transaction.enqueue(statements + Self.statements(appending: drafts))
    }

    /// The statements ``append(drafts:after:onlyIf:in:)`` runs for `drafts` after the caller's, for a
    /// caller that pipelines several groups of statements itself (each group with its own condition).
    public static func statements(appending drafts: [EventEnvelope], onlyIf condition: OutboxCondition? = nil) throws -> [PostgresStatement] {
        try drafts.map { try statement(appending: $0, stream: Streams.stream(for: $0.producer), condition: condition) }
    }

    static func append(
        _ draft: EventEnvelope, stream: String, in transaction: PostgresTransaction
    ) throws
        -> EventEnvelope
    {
        let statement = try statement(appending: draft, stream: stream)
        return try sequenced(draft, rows: try transaction.pipeline([statement])[0])
    }

    /// The statement that assigns the next sequence of the draft's aggregate and inserts it (when
    /// `condition` holds; nothing at all, not even a sequence number, otherwise).
    private static func statement(appending draft: EventEnvelope, stream: String, condition: OutboxCondition? = nil) throws -> PostgresStatement {
        OutboxRelay.localAppends.ring()
        let producer = draft.producer.rawValue
        let source: PostgresStatement =
            if let condition {
                "SELECT \(producer), \(draft.aggregateID), 1 \(condition.whereOpen)"
            } else {
                "VALUES (\(producer), \(draft.aggregateID), 1)"
            }
        return """
            WITH next AS (
                INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) \(source)
                ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
                RETURNING last_sequence
            )
            INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
            SELECT \(draft.id.uuid), \(stream), \(producer), \(draft.aggregateID), next.last_sequence, \(draft.type),
                   jsonb_set(\(PostgresJSONB(try draft.jsonData()))::jsonb, '{sequence}', to_jsonb(next.last_sequence))
            FROM next
            RETURNING sequence
            """
    }

    /// The draft with the sequence the insert returned.
    private static func sequenced(_ draft: EventEnvelope, rows: PostgresRows) throws -> EventEnvelope {
        let sequence = try rows[0].decode(Int64.self, at: 0)
        return EventEnvelope(
            id: draft.id,
            type: draft.type,
            version: draft.version,
            occurredAt: draft.occurredAt,
            aggregateID: draft.aggregateID,
            sequence: sequence,
            correlationID: draft.correlationID,
            causationID: draft.causationID,
            producer: draft.producer,
            data: draft.data
        )
    }
}
