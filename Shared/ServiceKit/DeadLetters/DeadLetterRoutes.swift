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
/// Operator actions require `X-Operator` (who did it, recorded on the entry).
public enum DeadLetterRoutes {
    public static func add(to router: Router<ServiceRequestContext>, store: DeadLetterStore, authentication: AuthenticationMiddleware) {
        let group = router.group("/v1/admin/dead-letters").add(middleware: authentication)
        group.get { request, _ -> Response in
            let filter = try filter(from: request.uri.queryParameters)
            let limit = try request.uri.queryParameters["limit"].map { text -> Int in
                guard let limit = Int(String(text)), (1...500).contains(limit) else { throw APIError.badRequest("limit must be 1 to 500") }
                return limit
            }
            let page: DeadLetterStore.Page
            do {
                page = try await store.list(filter, cursor: request.uri.queryParameters["cursor"].map(String.init), limit: limit ?? 50)
            } catch DeadLetterError.invalidCursor {
                throw APIError.badRequest("cursor is not one this API returned")
            }
            return try json(ListBody(deadLetters: page.entries, nextCursor: page.nextCursor))
        }
        group.get("/{id}") { _, context -> Response in
            guard let entry = try await store.entry(id: try id(context)) else { throw APIError.notFound("no dead letter with this id") }
            return try json(entry)
        }
        group.post("/replay") { request, context -> Response in
            let operatorName = try operatorName(request)
            let body = try await request.decode(as: ReplayFilter.self, context: context)
            let replayed = try await store.replayAll(try body.filter(), operatorName: operatorName)
            return try json(["replayed": replayed])
        }
        group.post("/{id}/replay") { request, context -> Response in
            let outcome = try await store.replay(id: try id(context), operatorName: try operatorName(request))
            return try respond(outcome, done: "replayed")
        }
        group.post("/{id}/resolve") { request, context -> Response in
            let operatorName = try operatorName(request)
            let note = try await request.decode(as: NoteBody.self, context: context).note
            guard !note.trimmingCharacters(in: .whitespaces).isEmpty, !note.unicodeScalars.contains("\u{0}") else {
                throw APIError.unprocessable(.validationFailed, "note must not be empty or contain NUL characters")
            }
            return try respond(try await store.resolve(id: try id(context), note: note, operatorName: operatorName), done: "resolved")
        }
        group.post("/{id}/discard") { request, context -> Response in
            let operatorName = try operatorName(request)
            let reason = try await request.decode(as: ReasonBody.self, context: context).reason
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, !reason.unicodeScalars.contains("\u{0}") else {
                throw APIError.unprocessable(.validationFailed, "reason must not be empty or contain NUL characters")
            }
            return try respond(try await store.discard(id: try id(context), reason: reason, operatorName: operatorName), done: "discarded")
        }
    }

    struct ListBody: Encodable {
        let deadLetters: [DeadLetterStore.Entry]
        let nextCursor: String?

        enum CodingKeys: String, CodingKey {
            case deadLetters = "dead_letters"
            case nextCursor = "next_cursor"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(deadLetters, forKey: .deadLetters)
            try container.encode(nextCursor, forKey: .nextCursor)
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

    static func filter(from query: Parameters) throws -> DeadLetterStore.Filter {
        func value(_ name: Substring) throws(APIError) -> String? {
            guard let text = query[name].map(String.init), !text.isEmpty else { return nil }
            return try storable(text, String(name))
        }
        var filter = DeadLetterStore.Filter()
        if let kind = try value("kind") {
            guard let parsed = DeadLetterStore.Kind(rawValue: kind) else { throw APIError.badRequest("kind must be failure or review") }
            filter.kind = parsed
        }
        if let status = try value("status") {
            guard let parsed = DeadLetterStore.Status(rawValue: status) else {
                throw APIError.badRequest("status must be open, replayed, resolved or discarded")
            }
            filter.status = parsed
        }
        filter.stream = try value("stream")
        filter.consumer = try value("consumer")
        filter.eventType = try value("event_type")
        filter.aggregateID = try value("aggregate_id")
        filter.from = try value("from").map { try date($0, "from") }
        filter.until = try value("until").map { try date($0, "until") }
        return filter
    }

    /// Postgres text cannot hold U+0000; a filter containing it is malformed (400), not a server fault.
    static func storable(_ text: String, _ name: String) throws(APIError) -> String {
        guard !text.unicodeScalars.contains("\u{0}") else { throw APIError.badRequest("\(name) must not contain NUL characters") }
        return text
    }

    static func date(_ text: String, _ name: String) throws -> Date {
        do {
            return try RFC3339.date(from: text)
        } catch {
            throw APIError.badRequest("\(name) must be an RFC 3339 timestamp with an offset")
        }
    }

    static func id(_ context: ServiceRequestContext) throws -> UUID {
        // A malformed id names no resource: 404, like an unknown one.
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw APIError.notFound("no dead letter with this id") }
        return id
    }

    static func operatorName(_ request: Request) throws -> String {
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
