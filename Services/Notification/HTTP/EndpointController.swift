import Foundation
import Hummingbird
import Messaging
import ServiceKit
import SharedModel

/// The endpoints API (DESIGN.md, Notification; every route admin-only): create (the secret is shown
/// once), list, get, update, pause, resume, rotate the secret, delete, replay a time range, and an
/// endpoint's deliveries. Every change writes an audit entry in its own transaction (``audit(_:_:action:id:outcome:status:details:)``).
struct EndpointController: Sendable {
    let endpoints: EndpointService
    let deliveries: DeliveryRepository
    let clock: WallClock
    let wake: @Sendable () -> Void

    func addRoutes(to router: Router<ServiceRequestContext>, admin: AuthenticationMiddleware) {
        let group = router.group("/v1/endpoints").add(middleware: admin)
        group.post { request, context -> Response in
            let body = try await request.decode(as: CreateBody.self, context: context)
            let draft = EndpointService.Draft(
                url: body.url, description: body.description, eventTypes: body.eventTypes ?? [], rateLimitPerSecond: body.rateLimitPerSecond)
            let audit = Self.audit(request, context, action: "endpoint.created", id: nil, outcome: "created", status: .created)
            let (endpoint, secret) = try await Self.refusing { try await endpoints.create(draft, audit: audit) }
            return try .json(CreatedEndpoint(endpoint: endpoint, secret: secret), status: .created)
        }
        group.get { request, _ -> Response in
            let query = QueryFilter(request)
            let page = try await endpoints.repository.list(after: try query.cursor(), limit: try query.limit())
            return try .json(ListPage("endpoints", items: page.rows, nextCursor: page.nextCursor))
        }
        group.get("/{id}") { _, context -> Response in
            try .json(try await Self.found(endpoints.repository.endpoint(try Self.id(context))))
        }
        group.patch("/{id}") { request, context -> Response in
            let id = try Self.id(context)
            let body = try await request.decode(as: PatchBody.self, context: context)
            let changes = EndpointService.Changes(
                url: body.url, description: body.description, eventTypes: body.eventTypes, rateLimitPerSecond: body.rateLimitPerSecond)
            let fields = [
                body.url.map { _ in "url" }, body.description.map { _ in "description" }, body.eventTypes.map { _ in "event_types" },
                body.rateLimitPerSecond.map { _ in "rate_limit_per_s" },
            ].compactMap { $0 }
            let audit = Self.audit(request, context, action: "endpoint.updated", id: id, details: ["fields": .array(fields.map(JSONValue.string))])
            return try .json(try await Self.found(Self.refusing { try await endpoints.update(id, changes, audit: audit) }))
        }
        group.post("/{id}/pause") { request, context -> Response in
            let id = try Self.id(context)
            let audit = Self.audit(request, context, action: "endpoint.paused", id: id, outcome: "paused")
            return try .json(try await Self.found(endpoints.setStatus(id, to: .paused, audit: audit)))
        }
        group.post("/{id}/resume") { request, context -> Response in
            let id = try Self.id(context)
            let audit = Self.audit(request, context, action: "endpoint.resumed", id: id, outcome: "resumed")
            let endpoint = try await Self.found(endpoints.setStatus(id, to: .enabled, audit: audit))
            wake()
            return try .json(endpoint)
        }
        group.post("/{id}/rotate-secret") { request, context -> Response in
            let id = try Self.id(context)
            let body = try await request.decodeIfPresent(as: RotateBody.self, context: context)
            let grace = body?.graceSeconds ?? 86_400
            let audit = Self.audit(
                request, context, action: "endpoint.secret_rotated", id: id, outcome: "rotated", details: ["grace_seconds": .integer(Int64(grace))])
            let rotated = try await Self.found(Self.refusing { try await endpoints.rotateSecret(id, graceSeconds: grace, audit: audit) })
            return try .json(RotatedSecret(secret: rotated.secret, previousSecretExpiresAt: rotated.previousExpireAt))
        }
        group.delete("/{id}") { request, context -> Response in
            let id = try Self.id(context)
            let audit = Self.audit(request, context, action: "endpoint.deleted", id: id, outcome: "deleted", status: .noContent)
            guard try await endpoints.repository.delete(id, audit: audit) else { throw APIError.notFound("no endpoint with this id") }
            return Response(status: .noContent)
        }
        group.post("/{id}/replay") { request, context -> Response in
            let id = try Self.id(context)
            let body = try await request.decode(as: ReplayBody.self, context: context)
            let since = try Self.timestamp(body.since, field: "since")
            let until = try Self.timestamp(body.until, field: "until")
            guard until > since else { throw Self.invalid("until", "until must be after since") }
            if let types = body.eventTypes { try Self.refusing { () throws(EndpointService.Invalid) in try EndpointService.checkEventTypes(types) } }
            let dryRun = body.dryRun ?? false
            guard
                let result = try await deliveries.replay(
                    endpoint: id, since: since, until: until, types: body.eventTypes.map(EndpointService.normalized), dryRun: dryRun,
                    now: clock.now(),
                    audit: Self.audit(request, context, action: "endpoint.replayed", id: id, outcome: dryRun ? "dry_run" : "replayed"))
            else { throw APIError.notFound("no endpoint with this id") }
            if result.queued > 0 { wake() }
            return try .json(ReplayResult(matched: result.matched, queued: result.queued))
        }
        group.get("/{id}/deliveries") { request, context -> Response in
            let id = try Self.id(context)
            let query = QueryFilter(request)
            let filter = DeliveryRepository.Filter(
                status: try query.choice("status", as: DeliveryView.Status.self), eventType: try query.text("event_type"))
            let cursor = try query.cursor()
            let limit = try query.limit()
            guard try await endpoints.repository.endpoint(id) != nil else { throw APIError.notFound("no endpoint with this id") }
            let page = try await deliveries.deliveries(of: id, filter, after: cursor, limit: limit)
            return try .json(ListPage("deliveries", items: page.rows, nextCursor: page.nextCursor))
        }
    }

    // MARK: Edge helpers

    /// The audit record of an endpoint or delivery action (operator `X-Operator`, else `admin`).
    static func audit(
        _ request: Request, _ context: ServiceRequestContext, action: String, id: UUID?, outcome: String = "updated",
        status: HTTPResponse.Status = .ok, details: [String: JSONValue] = [:]
    ) -> AuditRecord {
        AuditRecord.http(
            service: "notification", request, context, action: action, targetID: id?.lowercasedString, outcome: outcome, status: status,
            details: details)
    }

    static func id(_ context: ServiceRequestContext, resource: String = "endpoint") throws(APIError) -> UUID {
        guard let text = context.parameters.get("id"), let uuid = UUID(uuidString: text) else {
            throw APIError.notFound("no \(resource) with this id")
        }
        return uuid
    }

    static func found<Value>(_ value: Value?, resource: String = "endpoint") throws(APIError) -> Value {
        guard let value else { throw APIError.notFound("no \(resource) with this id") }
        return value
    }

    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError.unprocessable(.validationFailed, message, details: ["field": .string(field)])
    }

    /// Runs `body`, turning the service's refusals into 422s.
    static func refusing<Value>(_ body: () async throws -> Value) async throws -> Value {
        do {
            return try await body()
        } catch let invalid as EndpointService.Invalid {
            throw apiError(invalid)
        }
    }

    static func refusing(_ body: () throws(EndpointService.Invalid) -> Void) throws(APIError) {
        do {
            try body()
        } catch {
            throw apiError(error)
        }
    }

    private static func apiError(_ invalid: EndpointService.Invalid) -> APIError {
        switch invalid.kind {
        case .validation: Self.invalid(invalid.field, invalid.message)
        case .urlNotAllowed: APIError.unprocessable("endpoint_url_not_allowed", invalid.message, details: ["field": .string(invalid.field)])
        }
    }

    static func timestamp(_ text: String, field: String) throws(APIError) -> Date {
        do {
            return try RFC3339.date(from: text)
        } catch {
            throw invalid(field, "\(field) must be an RFC 3339 timestamp with an offset, e.g. 2026-12-03T10:00:00Z")
        }
    }
}

// MARK: Wire types

private struct CreateBody: Decodable {
    let url: String
    let description: String?
    let eventTypes: [String]?
    let rateLimitPerSecond: Int?

    enum CodingKeys: String, CodingKey {
        case url, description
        case eventTypes = "event_types"
        case rateLimitPerSecond = "rate_limit_per_s"
    }
}

/// A `PATCH`: an absent field is left as it is; `null` clears `description` and `rate_limit_per_s`.
private struct PatchBody: Decodable {
    var url: String?
    var description: String??
    var eventTypes: [String]?
    var rateLimitPerSecond: Int??

    enum CodingKeys: String, CodingKey {
        case url, description
        case eventTypes = "event_types"
        case rateLimitPerSecond = "rate_limit_per_s"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        url = try container.decodeIfPresent(String.self, forKey: .url)
        eventTypes = try container.decodeIfPresent([String].self, forKey: .eventTypes)
        if container.contains(.description) {
            description = .some(try container.decodeNil(forKey: .description) ? nil : try container.decode(String.self, forKey: .description))
        }
        if container.contains(.rateLimitPerSecond) {
            rateLimitPerSecond = .some(
                try container.decodeNil(forKey: .rateLimitPerSecond) ? nil : try container.decode(Int.self, forKey: .rateLimitPerSecond))
        }
    }
}

private struct RotateBody: Decodable {
    let graceSeconds: Int?

    enum CodingKeys: String, CodingKey {
        case graceSeconds = "grace_seconds"
    }
}

private struct ReplayBody: Decodable {
    let since: String
    let until: String
    let eventTypes: [String]?
    let dryRun: Bool?

    enum CodingKeys: String, CodingKey {
        case since, until
        case eventTypes = "event_types"
        case dryRun = "dry_run"
    }
}

private struct CreatedEndpoint: Encodable {
    let endpoint: Endpoint
    let secret: String

    func encode(to encoder: any Encoder) throws {
        try endpoint.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(secret, forKey: .secret)
    }

    enum Key: String, CodingKey { case secret }
}

private struct RotatedSecret: Encodable {
    let secret: String
    let previousSecretExpiresAt: Date

    enum CodingKeys: String, CodingKey {
        case secret
        case previousSecretExpiresAt = "previous_secret_expires_at"
    }
}

private struct ReplayResult: Encodable {
    let matched: Int
    let queued: Int
}
