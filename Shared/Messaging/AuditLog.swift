import Foundation
import Postgres
import SharedModel

/// One admin action to write to `platform.audit_log` (issue 17 item 5): who did what to which
/// resource, through which route, with what outcome. `details` is a small JSON object and never holds
/// a secret (no endpoint secrets, tokens or notes' free text beyond what the action stores anyway).
public struct AuditRecord: Sendable, Equatable {
    /// The service that performed the action, e.g. `notification`.
    public var service: String
    /// `X-Operator` when given, else `admin`; a command's `--operator`.
    public var operatorName: String
    /// The request's correlation id; nil for a command.
    public var requestID: String?
    /// `POST /v1/endpoints/{id}/pause`, or `cli: dlq replay`.
    public var route: String
    /// A stable name, e.g. `endpoint.paused`.
    public var action: String
    /// The resource acted on, e.g. the endpoint's id.
    public var targetID: String?
    /// What the action did, e.g. `succeeded`, `replayed`, `created`.
    public var outcome: String
    /// The HTTP status answered; nil for a command.
    public var httpStatus: Int?
    /// A small JSON object of facts about the action (never a secret).
    public var details: [String: JSONValue]

    public init(
        service: String, operatorName: String, requestID: String?, route: String, action: String, targetID: String?, outcome: String,
        httpStatus: Int?, details: [String: JSONValue] = [:]
    ) {
        self.service = service
        self.operatorName = operatorName
        self.requestID = requestID
        self.route = route
        self.action = action
        self.targetID = targetID
        self.outcome = outcome
        self.httpStatus = httpStatus
        self.details = details
    }

    /// The same action with another target, outcome or details (e.g. one record per entry of a bulk action).
    public func with(targetID: String? = nil, outcome: String? = nil, httpStatus: Int? = nil, details: [String: JSONValue]? = nil) -> AuditRecord {
        var record = self
        if let targetID { record.targetID = targetID }
        if let outcome { record.outcome = outcome }
        if let httpStatus { record.httpStatus = httpStatus }
        if let details { record.details = details }
        return record
    }

    /// The record of a command-line action: route `cli: <command>`, no request id or HTTP status.
    public static func command(
        service: String, operatorName: String, command: String, action: String, targetID: String?, outcome: String,
        details: [String: JSONValue] = [:]
    ) -> AuditRecord {
        AuditRecord(
            service: service, operatorName: operatorName, requestID: nil, route: "cli: \(command)", action: action, targetID: targetID,
            outcome: outcome, httpStatus: nil, details: details)
    }
}

/// `platform.audit_log`: written only inside the transaction of the action it records, read newest first.
public struct AuditLog: Sendable {
    /// One stored entry, as the admin API shows it.
    public struct Entry: Sendable, Encodable, Equatable {
        public let id: UUID
        public let service: String
        public let operatorName: String
        public let occurredAt: Date
        public let requestID: String?
        public let route: String
        public let action: String
        public let targetID: String?
        public let outcome: String
        public let httpStatus: Int?
        public let details: JSONValue

        enum CodingKeys: String, CodingKey {
            case id, service
            case operatorName = "operator"
            case occurredAt = "occurred_at"
            case requestID = "request_id"
            case route, action
            case targetID = "target_id"
            case outcome
            case httpStatus = "http_status"
            case details
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id.lowercasedString, forKey: .id)
            try container.encode(service, forKey: .service)
            try container.encode(operatorName, forKey: .operatorName)
            try container.encode(RFC3339.string(from: occurredAt), forKey: .occurredAt)
            try container.encode(requestID, forKey: .requestID)
            try container.encode(route, forKey: .route)
            try container.encode(action, forKey: .action)
            try container.encode(targetID, forKey: .targetID)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(httpStatus, forKey: .httpStatus)
            try container.encode(details, forKey: .details)
        }
    }

    /// What to list; every field narrows the selection, nil means any.
    public struct Filter: Sendable {
        public var service: String?
        public var operatorName: String?
        public var action: String?
        public var targetID: String?
        public var from: Date?
        public var until: Date?

        public init(
            service: String? = nil, operatorName: String? = nil, action: String? = nil, targetID: String? = nil, from: Date? = nil,
            until: Date? = nil
        ) {
            self.service = service
            self.operatorName = operatorName
            self.action = action
            self.targetID = targetID
            self.from = from
            self.until = until
        }
    }

    /// The longest operator name stored (the column's CHECK).
    public static let maximumOperatorLength = 200

    private let postgres: PostgresClient

    public init(postgres: PostgresClient) {
        self.postgres = postgres
    }

    /// Writes `record` inside the action's own `transaction` (UTC time from `clock`), so the entry
    /// commits or rolls back with the action. Returns the entry's id.
    @discardableResult
    public static func record(_ record: AuditRecord, clock: WallClock = .system, in transaction: PostgresTransaction) throws -> UUID {
        let id = UUID.timeOrdered()
        let operatorName = String(record.operatorName.prefix(maximumOperatorLength))
        let details = try PostgresJSONB(encoding: JSONValue.object(record.details), with: JSONEncoder.platform)
        try transaction.query(
            """
            INSERT INTO platform.audit_log
                (id, service, operator, occurred_at, request_id, route, action, target_id, outcome, http_status, details)
            VALUES (\(id), \(record.service), \(operatorName.isEmpty ? "admin" : operatorName), \(clock.now()), \(record.requestID),
                    \(record.route), \(record.action), \(record.targetID), \(record.outcome), \(record.httpStatus.map(Int32.init)), \(details))
            """)
        return id
    }

    /// Writes `record` when there is one (an action called without an audit record, e.g. from a test, writes none).
    public static func record(_ record: AuditRecord?, clock: WallClock = .system, in transaction: PostgresTransaction) throws {
        guard let record else { return }
        try self.record(record, clock: clock, in: transaction)
    }

    /// Entries matching `filter`, newest first, `limit` per page, and the next page's cursor (nil on the last).
    public func list(_ filter: Filter, after cursor: ListCursor?, limit: Int) async throws -> (entries: [Entry], nextCursor: String?) {
        var query = NewestFirstQuery(select: Self.selectColumns, timeColumn: "occurred_at")
        query.equal("service", filter.service)
        query.equal("operator", filter.operatorName)
        query.equal("action", filter.action)
        query.equal("target_id", filter.targetID)
        query.time(from: filter.from, until: filter.until)
        let page = try await query.page(
            on: postgres, after: cursor, limit: max(1, min(limit, 200)), decode: Self.entry,
            position: { ListCursor(createdAt: $0.occurredAt, id: $0.id) })
        return (page.rows, page.nextCursor)
    }

    static let selectColumns: PostgresStatement = """
        SELECT id, service, operator, occurred_at, request_id, route, action, target_id, outcome, http_status, details::text
        FROM platform.audit_log
        """

    static func entry(_ row: PostgresRow) throws -> Entry {
        Entry(
            id: try row.decode(UUID.self, at: 0),
            service: try row.decode(String.self, at: 1),
            operatorName: try row.decode(String.self, at: 2),
            occurredAt: try row.decode(Date.self, at: 3),
            requestID: try row.decode(String?.self, at: 4),
            route: try row.decode(String.self, at: 5),
            action: try row.decode(String.self, at: 6),
            targetID: try row.decode(String?.self, at: 7),
            outcome: try row.decode(String.self, at: 8),
            httpStatus: try row.decode(Int32?.self, at: 9).map(Int.init),
            details: try JSONDecoder.platform.decode(JSONValue.self, from: Data(try row.decode(String.self, at: 10).utf8))
        )
    }
}
