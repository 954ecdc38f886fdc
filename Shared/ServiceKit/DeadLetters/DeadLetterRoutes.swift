import Foundation
import HTTPTypes
import Hummingbird
import Messaging
import SharedModel

/// The dead-letter admin API every service that consumes streams mounts (admin token only):
///
/// - `GET  /v1/admin/dead-letters` with filters `kind`, `status`, `stream`, `consumer`, `event_type`,
///   `aggregate_id` (e.g. a booking id), `from`, `until` (RFC 3339), `cursor`, `limit` (1-500)
/// - `GET  /v1/admin/dead-letters/{id}`
/// - `POST /v1/admin/dead-letters/{id}/replay`, `POST /v1/admin/dead-letters/replay` (body: the filter)
/// - `POST /v1/admin/dead-letters/{id}/resolve` `{"note": "..."}`
/// - `POST /v1/admin/dead-letters/{id}/discard` `{"reason": "..."}`
///
/// Operator actions require `X-Operator` (who did it, recorded on the entry). Each one that changes an
/// entry writes an audit entry (`dead_letter.replayed|resolved|discarded`, `service` naming the caller)
/// in the same transaction; a bulk replay writes one per replayed entry.
public enum DeadLetterRoutes {
    public static func add(
        to router: Router<ServiceRequestContext>, store: DeadLetterStore, service: String, authentication: AuthenticationMiddleware
    ) {
        let group = router.group("/v1/admin/dead-letters").add(middleware: authentication)
        group.get { request, _ -> Response in
            let query = QueryFilter(request)
            let filter = try filter(from: query)
            let limit = try query.limit()
            let page: DeadLetterStore.Page
            do {
                page = try await store.list(filter, cursor: try query.text("cursor"), limit: limit)
            } catch is InvalidCursor {
                throw APIError.invalidCursor
            }
            return try json(ListPage("dead_letters", items: page.entries, nextCursor: page.nextCursor))
        }
        group.get("/{id}") { _, context -> Response in
            guard let entry = try await store.entry(id: try id(context)) else { throw APIError.notFound("no dead letter with this id") }
            return try json(entry)
        }
        group.post("/replay") { request, context -> Response in
            let operatorName = try operatorName(request)
            let body = try await request.decode(as: ReplayFilter.self, context: context)
            let audit = AuditRecord.http(
                service: service, request, context, action: "dead_letter.replayed", targetID: nil, outcome: "replayed", operatorName: operatorName)
            let replayed = try await store.replayAll(try body.filter(), operatorName: operatorName, audit: audit)
            return try json(["replayed": replayed])
        }
        group.post("/{id}/replay") { request, context -> Response in
            let (id, operatorName) = (try id(context), try operatorName(request))
            let audit = AuditRecord.http(
                service: service, request, context, action: "dead_letter.replayed", targetID: id.lowercasedString, outcome: "replayed",
                operatorName: operatorName)
            let outcome = try await store.replay(id: id, operatorName: operatorName, audit: audit)
            return try respond(outcome, done: "replayed")
        }
        group.post("/{id}/resolve") { request, context -> Response in
            let operatorName = try operatorName(request)
            let note = try await request.decode(as: NoteBody.self, context: context).note
            guard !note.trimmingCharacters(in: .whitespaces).isEmpty, !note.unicodeScalars.contains("\u{0}") else {
                throw APIError.unprocessable(.validationFailed, "note must not be empty or contain NUL characters")
            }
            let id = try id(context)
            let audit = AuditRecord.http(
                service: service, request, context, action: "dead_letter.resolved", targetID: id.lowercasedString, outcome: "resolved",
                operatorName: operatorName)
            return try respond(try await store.resolve(id: id, note: note, operatorName: operatorName, audit: audit), done: "resolved")
        }
        group.post("/{id}/discard") { request, context -> Response in
            let operatorName = try operatorName(request)
            let reason = try await request.decode(as: ReasonBody.self, context: context).reason
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, !reason.unicodeScalars.contains("\u{0}") else {
                throw APIError.unprocessable(.validationFailed, "reason must not be empty or contain NUL characters")
            }
            let id = try id(context)
            let audit = AuditRecord.http(
                service: service, request, context, action: "dead_letter.discarded", targetID: id.lowercasedString, outcome: "discarded",
                operatorName: operatorName)
            return try respond(try await store.discard(id: id, reason: reason, operatorName: operatorName, audit: audit), done: "discarded")
        }
    }

    struct NoteBody: Decodable { let note: String }
    struct ReasonBody: Decodable { let reason: String }

    /// The body of a bulk replay: the same filters as the listing (kind and status are implied).
    struct ReplayFilter: Decodable {
        let stream: String?
        let consumer: String?
        let eventType: String?
        let aggregateID: String?
        let from: String?
        let until: String?

        enum CodingKeys: String, CodingKey {
            case stream, consumer
            case eventType = "event_type"
            case aggregateID = "aggregate_id"
            case from, until
        }

        func filter() throws -> DeadLetterStore.Filter {
            DeadLetterStore.Filter(
                stream: try stream.map { try storable($0, "stream") }, consumer: try consumer.map { try storable($0, "consumer") },
                eventType: try eventType.map { try storable($0, "event_type") },
                aggregateID: try aggregateID.map { try storable($0, "aggregate_id") },
                from: try from.map { try date($0, "from") }, until: try until.map { try date($0, "until") }
            )
        }
    }

    static func filter(from query: QueryFilter) throws -> DeadLetterStore.Filter {
        var filter = DeadLetterStore.Filter()
        filter.kind = try query.choice("kind", as: DeadLetterStore.Kind.self)
        filter.status = try query.choice("status", as: DeadLetterStore.Status.self)
        filter.stream = try query.text("stream")
        filter.consumer = try query.text("consumer")
        filter.eventType = try query.text("event_type")
        filter.aggregateID = try query.text("aggregate_id")
        filter.from = try query.timestamp("from")
        filter.until = try query.timestamp("until")
        return filter
    }

    static func storable(_ text: String, _ name: String) throws(APIError) -> String {
        try QueryFilter.storable(text, name)
    }

    static func date(_ text: String, _ name: String) throws -> Date {
        try QueryFilter.timestamp(text, name)
    }

    static func id(_ context: ServiceRequestContext) throws -> UUID {
        // A malformed id names no resource: 404, like an unknown one.
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw APIError.notFound("no dead letter with this id") }
        return id
    }

    /// The `X-Operator` of an operator action (400 when missing, blank or over 200 characters).
    public static func operatorName(_ request: Request) throws -> String {
        guard let name = request.headers[.operatorName]?.trimmingCharacters(in: .whitespaces), !name.isEmpty, name.count <= 200 else {
            throw APIError.badRequest("X-Operator is required: who performs this action")
        }
        return name
    }

    static func respond(_ outcome: DeadLetterStore.Outcome, done: String) throws -> Response {
        switch outcome {
        case .done:
            return try json(["status": done])
        case .unchanged(let status):
            throw APIError.conflict(.conflict, "the dead letter is \(status.rawValue), not open", details: ["status": .string(status.rawValue)])
        case .notReplayable:
            throw APIError.unprocessable(.unprocessable, "only failure entries can be replayed; resolve or discard a review entry")
        case .notFound:
            throw APIError.notFound("no dead letter with this id")
        }
    }

    static func json(_ value: some Encodable) throws -> Response {
        try Response.json(value)
    }
}
