import Crypto
import Foundation
import Messaging
import Postgres
import SharedModel

/// One verified delivery as it arrived: the exact bytes, who sent it and when.
struct ProviderDelivery: Sendable {
    var source: PaymentSource
    /// Standard Webhooks' `webhook-id`; `nil` for Stripe.
    var deliveryID: String?
    var body: [UInt8]
    /// The signature's timestamp.
    var signedAt: Date
    var receivedAt: Date
}

/// What storing a delivery did.
enum StoreOutcome: Sendable, Equatable {
    /// Stored now (and its domain event appended to the outbox when `accepted`).
    case stored(id: UUID, status: ProviderEventStatus)
    /// The provider had delivered this event before; nothing changed.
    case duplicate(id: UUID, status: ProviderEventStatus)
}

enum ProviderEventStatus: String, Sendable, Codable, CaseIterable {
    /// Mapped to a domain event, which went to the outbox in the same transaction.
    case accepted
    /// A type the platform does not act on; kept.
    case ignored
    /// Verified but unreadable; kept for an operator and answered 400.
    case malformed
}

/// `payments.provider_events` on Postgres: each verified delivery stored once, with its domain event
/// in the outbox in the same transaction; plus the admin lookups.
///
/// Concurrent stores share transactions (group commit, ``GroupCommit``): while one batch's
/// transaction runs, the deliveries that arrive wait and then go together in the next, each answered
/// only after the transaction that holds it committed. A lone delivery is stored at once, in a
/// transaction of its own. A batch that fails is stored again one delivery per transaction, so one
/// delivery's error is never another's.
struct ProviderEventStore: Sendable {
    let postgres: PostgresClient
    private let batches: GroupCommit<Pending, StoreOutcome>?

    /// `groupCommit`: at most that many deliveries per transaction and `concurrentBatches`
    /// transactions at once; nil stores each delivery in a transaction of its own.
    init(postgres: PostgresClient, groupCommit: (batchSize: Int, concurrentBatches: Int)? = (64, 4)) {
        self.postgres = postgres
        batches = groupCommit.map { limits in
            GroupCommit(
                batchSize: limits.batchSize, concurrentBatches: limits.concurrentBatches,
                // An unreachable database fails every delivery alike (503, the sender retries); anything else may be one delivery's.
                retriesAlone: { error in
                    guard let error = error as? PostgresError else { return true }
                    return ![.connectionFailed, .connectionLost, .poolExhausted].contains(error.code)
                }
            ) { pending in
                try await postgres.withTransaction { transaction in try Self.store(pending, in: transaction) }
            }
        }
    }

    /// A delivery waiting to be stored.
    struct Pending: Sendable {
        let id = UUID.timeOrdered()
        var record: ProviderEventRecord
        let delivery: ProviderDelivery
        let correlationID: String
    }

    /// Stores `record` once per `(provider, provider_event_id)`. A mapped event's domain event is
    /// appended to the outbox in the same transaction, so the row and the event commit together or not
    /// at all. A repeated delivery changes nothing and reports the stored row.
    func store(_ record: ProviderEventRecord, delivery: ProviderDelivery, correlationID: String) async throws -> StoreOutcome {
        let pending = Pending(record: record, delivery: delivery, correlationID: correlationID)
        if let batches { return try await batches.submit(pending) }
        return try await postgres.withTransaction { transaction in try Self.store([pending], in: transaction)[0] }
    }

    /// Stores `batch` in `transaction`, in one pipelined round trip (plus one for disputes' bookings
    /// and one for duplicates' rows when there are any); the outcomes in the batch's order.
    static func store(_ batch: [Pending], in transaction: PostgresTransaction) throws -> [StoreOutcome] {
        var batch = batch
        for index in batch.indices where batch[index].record.dispute != nil {
            if let reference = batch[index].record.providerRef {
                batch[index].record.resolveDispute(bookingID: try booking(paidBy: reference, source: batch[index].record.source, in: transaction))
            }
        }
        // Rows are written in one order (the event's aggregate, whose sequence row the outbox insert
        // locks, then the provider's event id) whatever the batch's, so two batches do not wait on
        // each other's rows in opposite orders.
        func key(_ index: Int) -> (String, String, String) {
            let record = batch[index].record
            return (record.domainEvent?.aggregateID ?? "", record.providerEventID.rawValue, record.source.rawValue)
        }
        let order = batch.indices.sorted { key($0) < key($1) }
        var statements: [PostgresStatement] = []
        var insertAt: [Int: Int] = [:]
        var statuses: [Int: ProviderEventStatus] = [:]
        for index in order {
            let pending = batch[index]
            let record = pending.record
            let envelope = try record.domainEvent.map { event in
                try EventEnvelope(
                    event: event, occurredAt: pending.delivery.receivedAt, sequence: 0, correlationID: pending.correlationID,
                    causationID: "\(record.source.rawValue):\(record.providerEventID)", producer: .paymentsWebhook)
            }
            let status: ProviderEventStatus = envelope == nil ? .ignored : .accepted
            statuses[index] = status
            // The outbox insert runs only if this row was inserted.
            let gate = OutboxCondition(token: pending.id.uuidString)
            let delivery = pending.delivery
            insertAt[index] = statements.count
            statements.append(
                """
                INSERT INTO payments.provider_events
                    (id, provider, provider_event_id, delivery_id, event_type, status, booking_id, provider_ref, amount, currency,
                     domain_event_id, domain_event_type, raw_body, body_sha256, signed_at, received_at)
                VALUES (\(pending.id), \(record.source.rawValue), \(record.providerEventID.rawValue), \(delivery.deliveryID), \(record.eventType),
                        \(status.rawValue), \(record.bookingID?.rawValue), \(record.providerRef), \(record.amount?.amount),
                        \(record.amount?.currency.code), \(envelope?.id.rawValue), \(envelope?.type), \(Data(delivery.body)),
                        \(Data(SHA256.hash(data: delivery.body))), \(delivery.signedAt), \(delivery.receivedAt))
                ON CONFLICT (provider, provider_event_id) DO NOTHING
                RETURNING id, \(gate.opening)
                """)
            statements += try Outbox.statements(appending: envelope.map { [$0] } ?? [], onlyIf: gate)
        }
        let results = try transaction.pipeline(statements)
        // Delivered before (perhaps by a request that committed while this one waited on it, or earlier in this batch).
        let duplicates = batch.indices.filter { results[insertAt[$0] ?? 0].isEmpty }
        var stored: [Int: (UUID, ProviderEventStatus)] = [:]
        if !duplicates.isEmpty {
            let lookups = try transaction.pipeline(
                duplicates.map { index in
                    let record = batch[index].record
                    return """
                        SELECT id, status FROM payments.provider_events
                        WHERE provider = \(record.source.rawValue) AND provider_event_id = \(record.providerEventID.rawValue)
                        """
                })
            for (index, rows) in zip(duplicates, lookups) {
                guard let row = rows.first else { throw PostgresError(code: .serializationFailure, message: "the conflicting row vanished") }
                stored[index] = (try row.decode(UUID.self, at: 0), try status(row, at: 1))
            }
        }
        return try batch.indices.map { index in
            if let (id, status) = stored[index] { return .duplicate(id: id, status: status) }
            guard let status = statuses[index] else {
                throw PostgresError(code: .serializationFailure, message: "a delivery of the batch was not stored")
            }
            return .stored(id: batch[index].id, status: status)
        }
    }

    /// The booking the payment `reference` paid for: the one its intent was created for, else the one
    /// a stored delivery of the payment named; `nil` when the platform knows neither.
    static func booking(paidBy reference: String, source: PaymentSource, in transaction: PostgresTransaction) throws -> BookingID? {
        let rows = try transaction.query(
            """
            SELECT coalesce(
                (SELECT booking_id FROM payments.payment_intents WHERE provider = \(source.rawValue) AND provider_ref = \(reference)),
                (SELECT booking_id FROM payments.provider_events
                 WHERE provider_ref = \(reference) AND provider = \(source.rawValue) AND booking_id IS NOT NULL
                   AND domain_event_type = 'payment.succeeded'
                 ORDER BY received_at LIMIT 1))
            """)
        return try rows.first?.decode(UUID?.self, at: 0).map(BookingID.init)
    }

    /// Keeps a verified but unreadable delivery for an operator, once per body. Returns its row id.
    func storeMalformed(_ delivery: ProviderDelivery, reason: String) async throws -> UUID {
        let id = UUID.timeOrdered()
        let digest = Data(SHA256.hash(data: delivery.body))
        let source = delivery.source.rawValue
        let insert: PostgresStatement = """
            INSERT INTO payments.provider_events
                (id, provider, delivery_id, status, error, raw_body, body_sha256, signed_at, received_at)
            VALUES (\(id), \(source), \(delivery.deliveryID), 'malformed', \(reason), \(Data(delivery.body)), \(digest), \(delivery.signedAt),
                    \(delivery.receivedAt))
            ON CONFLICT (provider, body_sha256) WHERE status = 'malformed' DO NOTHING
            RETURNING id
            """
        return try await postgres.withTransaction { transaction in
            if let row = try transaction.query(insert).first { return try row.decode(UUID.self, at: 0) }
            let rows = try transaction.query(
                "SELECT id FROM payments.provider_events WHERE provider = \(source) AND body_sha256 = \(digest) AND status = 'malformed'")
            guard let row = rows.first else { throw PostgresError(code: .serializationFailure, message: "the conflicting row vanished") }
            return try row.decode(UUID.self, at: 0)
        }
    }

    // MARK: Lookups

    struct Filter: Sendable {
        var provider: PaymentSource?
        var providerEventID: String?
        var bookingID: UUID?
        var providerRef: String?
        var status: ProviderEventStatus?
        var eventType: String?
        var from: Date?
        var until: Date?
    }

    struct Page: Sendable {
        let events: [StoredProviderEvent]
        let nextCursor: String?
    }

    func event(id: UUID) async throws -> StoredProviderEvent? {
        try await postgres.sharedQuery(Self.selectColumns + " WHERE id = \(id)").first.map(StoredProviderEvent.init)
    }

    /// Stored events matching `filter`, newest first, `limit` per page.
    func list(_ filter: Filter, cursor: String?, limit: Int) async throws -> Page {
        var position: ListCursor?
        if let cursor {
            guard let parsed = ListCursor(cursor) else { throw InvalidCursor() }
            position = parsed
        }
        var query = NewestFirstQuery(select: Self.selectColumns, timeColumn: "received_at")
        query.equal("provider", filter.provider?.rawValue)
        query.equal("provider_event_id", filter.providerEventID)
        query.equal("booking_id", filter.bookingID)
        query.equal("provider_ref", filter.providerRef)
        query.equal("status", filter.status?.rawValue)
        query.equal("event_type", filter.eventType)
        query.time(from: filter.from, until: filter.until)
        let page = try await query.page(
            on: postgres, after: position, limit: limit, decode: StoredProviderEvent.init,
            position: { ListCursor(createdAt: $0.receivedAt, id: $0.id) })
        return Page(events: page.rows, nextCursor: page.nextCursor)
    }

    /// What the payments service deletes past `retention`: stored deliveries received before the cutoff.
    static func retentionRule(retention: Duration) -> RetentionRule {
        RetentionRule(table: "payments.provider_events", retention: retention) { cutoff, limit in
            """
            DELETE FROM payments.provider_events WHERE id IN (
                SELECT id FROM payments.provider_events WHERE received_at < \(cutoff) ORDER BY received_at LIMIT \(limit))
            """
        }
    }

    static let selectColumns: PostgresStatement = """
        SELECT id, provider, provider_event_id, delivery_id, event_type, status, booking_id, provider_ref, amount, currency,
               domain_event_id, domain_event_type, error, raw_body, signed_at, received_at
        FROM payments.provider_events
        """

    static func status(_ row: PostgresRow, at index: Int) throws -> ProviderEventStatus {
        let text = try row.decode(String.self, at: index)
        guard let status = ProviderEventStatus(rawValue: text) else {
            throw PostgresError(code: .decoding, message: "unknown provider event status \(text)")
        }
        return status
    }
}

/// A stored delivery as the admin API shows it. The raw body is given as text when it is UTF-8,
/// otherwise base64 (`raw_body_encoding`), so nothing is lost.
struct StoredProviderEvent: Sendable, Encodable {
    let id: UUID
    let provider: String
    let providerEventID: String?
    let deliveryID: String?
    let eventType: String?
    let status: ProviderEventStatus
    let bookingID: UUID?
    let providerRef: String?
    let amount: Int64?
    let currency: String?
    let domainEventID: UUID?
    let domainEventType: String?
    let error: String?
    let rawBody: String
    let rawBodyEncoding: String
    let signedAt: Date
    let receivedAt: Date

    init(row: PostgresRow) throws {
        id = try row.decode(UUID.self, at: 0)
        provider = try row.decode(String.self, at: 1)
        providerEventID = try row.decode(String?.self, at: 2)
        deliveryID = try row.decode(String?.self, at: 3)
        eventType = try row.decode(String?.self, at: 4)
        status = try ProviderEventStore.status(row, at: 5)
        bookingID = try row.decode(UUID?.self, at: 6)
        providerRef = try row.decode(String?.self, at: 7)
        amount = try row.decode(Int64?.self, at: 8)
        currency = try row.decode(String?.self, at: 9)
        domainEventID = try row.decode(UUID?.self, at: 10)
        domainEventType = try row.decode(String?.self, at: 11)
        error = try row.decode(String?.self, at: 12)
        let body = try row.decode(Data.self, at: 13)
        if let text = String(validating: body, as: UTF8.self) {
            rawBody = text
            rawBodyEncoding = "utf-8"
        } else {
            rawBody = body.base64EncodedString()
            rawBodyEncoding = "base64"
        }
        signedAt = try row.decode(Date.self, at: 14)
        receivedAt = try row.decode(Date.self, at: 15)
    }

    private enum CodingKeys: String, CodingKey {
        case id, provider, status, amount, currency, error
        case providerEventID = "provider_event_id"
        case deliveryID = "delivery_id"
        case eventType = "type"
        case bookingID = "booking_id"
        case providerRef = "provider_ref"
        case domainEventID = "domain_event_id"
        case domainEventType = "domain_event_type"
        case rawBody = "raw_body"
        case rawBodyEncoding = "raw_body_encoding"
        case signedAt = "signed_at"
        case receivedAt = "received_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercasedString, forKey: .id)
        try container.encode(provider, forKey: .provider)
        try container.encode(providerEventID, forKey: .providerEventID)
        try container.encode(deliveryID, forKey: .deliveryID)
        try container.encode(eventType, forKey: .eventType)
        try container.encode(status, forKey: .status)
        try container.encode(bookingID?.lowercasedString, forKey: .bookingID)
        try container.encode(providerRef, forKey: .providerRef)
        try container.encode(amount, forKey: .amount)
        try container.encode(currency, forKey: .currency)
        try container.encode(domainEventID?.lowercasedString, forKey: .domainEventID)
        try container.encode(domainEventType, forKey: .domainEventType)
        try container.encode(error, forKey: .error)
        try container.encode(rawBody, forKey: .rawBody)
        try container.encode(rawBodyEncoding, forKey: .rawBodyEncoding)
        try container.encode(RFC3339.string(from: signedAt), forKey: .signedAt)
        try container.encode(RFC3339.string(from: receivedAt), forKey: .receivedAt)
    }
}
