import Foundation
import SharedModel

/// Whether deliveries go to an endpoint.
enum EndpointStatus: String, Sendable, Codable, CaseIterable {
    /// Deliveries are created and sent.
    case enabled
    /// An operator paused it: no new deliveries are created, pending ones wait until it is resumed.
    case paused
    /// It answered 410 Gone or failed too long; like `paused`, with `disabled_reason` saying why.
    case disabled
}

/// A subscriber's endpoint as the API shows it (never with its secret).
struct Endpoint: Sendable, Equatable, Encodable {
    let id: UUID
    var url: String
    var description: String?
    var eventTypes: [String]
    var rateLimitPerSecond: Int?
    var status: EndpointStatus
    var disabledReason: String?
    var failingSince: Date?
    let createdAt: Date
    var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id = "endpoint_id"
        case url, description
        case eventTypes = "event_types"
        case rateLimitPerSecond = "rate_limit_per_s"
        case status
        case disabledReason = "disabled_reason"
        case failingSince = "failing_since"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Lower-case id, explicit nulls.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercasedString, forKey: .id)
        try container.encode(url, forKey: .url)
        try container.encode(description, forKey: .description)
        try container.encode(eventTypes, forKey: .eventTypes)
        try container.encode(rateLimitPerSecond, forKey: .rateLimitPerSecond)
        try container.encode(status, forKey: .status)
        try container.encode(disabledReason, forKey: .disabledReason)
        try container.encode(failingSince, forKey: .failingSince)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}
