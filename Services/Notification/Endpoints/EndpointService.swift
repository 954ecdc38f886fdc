import Foundation
import Messaging
import SharedModel

/// What the endpoints API does, between decoding and SQL: checks the URL against the SSRF policy and
/// the subscriptions against the deliverable types, makes and seals secrets, and stamps times.
struct EndpointService: Sendable {
    let repository: EndpointRepository
    let policy: EndpointURLPolicy
    let secrets: SecretBox
    let clock: WallClock

    /// A value the API refuses, with the field it names.
    struct Invalid: Error, Equatable {
        enum Kind: Equatable {
            case validation
            /// The SSRF policy: 422 `endpoint_url_not_allowed`.
            case urlNotAllowed
        }

        let kind: Kind
        let field: String
        let message: String
    }

    struct Draft: Sendable {
        var url: String
        var description: String?
        var eventTypes: [String]
        var rateLimitPerSecond: Int?
    }

    /// Changes of a `PATCH`: nil leaves a field; `.some(nil)` clears a nullable one.
    struct Changes: Sendable {
        var url: String?
        var description: String??
        var eventTypes: [String]?
        var rateLimitPerSecond: Int??
    }

    static let maximumDescriptionLength = 1_024
    static let maximumEventTypes = 64
    static let rateLimits = 1...10_000
    static let maximumGrace = 7 * 86_400

    /// `audit` (its target set to the new endpoint's id) is written in the creating transaction.
    func create(_ draft: Draft, audit: AuditRecord? = nil) async throws -> (endpoint: Endpoint, secret: String) {
        try await check(draft)
        let now = clock.now()
        let endpoint = Endpoint(
            id: UUID.timeOrdered(), url: draft.url, description: draft.description, eventTypes: Self.normalized(draft.eventTypes),
            rateLimitPerSecond: draft.rateLimitPerSecond, status: .enabled, disabledReason: nil, failingSince: nil, createdAt: now, updatedAt: now)
        let secret = SecretBox.newSecret()
        try await repository.create(
            endpoint, sealedSecret: try secrets.seal(secret, endpoint: endpoint.id), audit: audit?.with(targetID: endpoint.id.lowercasedString)
        )
        return (endpoint, secret)
    }

    func update(_ id: UUID, _ changes: Changes, audit: AuditRecord? = nil) async throws -> Endpoint? {
        // The raw list counts against the limit, as on create; duplicates are dropped after.
        if let eventTypes = changes.eventTypes { try Self.checkEventTypes(eventTypes) }
        guard var endpoint = try await repository.endpoint(id) else { return nil }
        if let url = changes.url { endpoint.url = url }
        if let description = changes.description { endpoint.description = description }
        if let eventTypes = changes.eventTypes { endpoint.eventTypes = Self.normalized(eventTypes) }
        if let rate = changes.rateLimitPerSecond { endpoint.rateLimitPerSecond = rate }
        try await check(
            Draft(
                url: endpoint.url, description: endpoint.description, eventTypes: endpoint.eventTypes, rateLimitPerSecond: endpoint.rateLimitPerSecond
            ),
            checksURL: changes.url != nil)
        endpoint.updatedAt = clock.now()
        return try await repository.update(endpoint, audit: audit)
    }

    /// A new secret; the ones signing now keep signing for `graceSeconds` more. Nil when the endpoint
    /// does not exist.
    func rotateSecret(_ id: UUID, graceSeconds: Int, audit: AuditRecord? = nil) async throws -> (secret: String, previousExpireAt: Date)? {
        guard (0...Self.maximumGrace).contains(graceSeconds) else {
            throw Invalid(kind: .validation, field: "grace_seconds", message: "grace_seconds must be 0 to \(Self.maximumGrace) (7 days)")
        }
        let now = clock.now()
        let secret = SecretBox.newSecret()
        let expireAt = now.adding(.seconds(graceSeconds))
        guard
            try await repository.rotate(
                id, sealedSecret: try secrets.seal(secret, endpoint: id), previousExpireAt: expireAt, at: now, audit: audit)
        else {
            return nil
        }
        return (secret, expireAt)
    }

    func setStatus(_ id: UUID, to status: EndpointStatus, audit: AuditRecord? = nil) async throws -> Endpoint? {
        try await repository.setStatus(id, to: status, at: clock.now(), audit: audit)
    }

    private func check(_ draft: Draft, checksURL: Bool = true) async throws(Invalid) {
        if draft.url.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw Invalid(kind: .validation, field: "url", message: "url must not contain control characters")
        }
        if checksURL {
            do {
                try await policy.check(draft.url)
            } catch {
                throw Invalid(kind: .urlNotAllowed, field: "url", message: "url is not allowed: \(error.reason)")
            }
        }
        for (field, text) in [("url", draft.url), ("description", draft.description ?? "")] + draft.eventTypes.map({ ("event_types", $0) })
        where text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw Invalid(kind: .validation, field: field, message: "\(field) must not contain control characters")
        }
        // Counted as the database counts: Unicode code points, not what reads as one character.
        if let description = draft.description, description.unicodeScalars.count > Self.maximumDescriptionLength {
            throw Invalid(kind: .validation, field: "description", message: "description must be at most \(Self.maximumDescriptionLength) characters")
        }
        try Self.checkEventTypes(draft.eventTypes)
        if let rate = draft.rateLimitPerSecond, !Self.rateLimits.contains(rate) {
            throw Invalid(kind: .validation, field: "rate_limit_per_s", message: "rate_limit_per_s must be 1 to 10000, or null for no limit")
        }
    }

    static func checkEventTypes(_ types: [String], field: String = "event_types") throws(Invalid) {
        guard types.count <= maximumEventTypes else {
            throw Invalid(kind: .validation, field: field, message: "\(field) may list at most \(maximumEventTypes) entries")
        }
        for type in types {
            if let problem = EventTypeFilter.problem(with: type) { throw Invalid(kind: .validation, field: field, message: problem) }
        }
    }

    /// Without duplicates, in the order given.
    static func normalized(_ types: [String]) -> [String] {
        var seen = Set<String>()
        return types.filter { seen.insert($0).inserted }
    }
}
