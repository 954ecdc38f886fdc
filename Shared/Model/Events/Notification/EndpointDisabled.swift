import Foundation

/// `notification.endpoint_disabled`: the notification service stopped delivering to a subscriber's
/// endpoint - it answered 410 Gone, or it failed without a success for `NOTIFICATION_DISABLE_AFTER`.
/// An operator's resume re-enables it.
public struct EndpointDisabled: DomainEvent, Hashable {
    /// `notification.endpoint_disabled`.
    public static var eventType: String { "notification.endpoint_disabled" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The disabled endpoint.
    public let endpointID: UUID
    /// Why, for people: e.g. `the endpoint answered 410 Gone`.
    public let reason: String
    /// The first failure since its last success, when it was failing.
    public let failingSince: Date?

    /// Creates the event.
    public init(endpointID: UUID, reason: String, failingSince: Date?) {
        self.endpointID = endpointID
        self.reason = reason
        self.failingSince = failingSince
    }

    /// The endpoint id.
    public var aggregateID: String { endpointID.lowercasedString }

    private enum CodingKeys: String, CodingKey {
        case endpointID = "endpoint_id"
        case reason
        case failingSince = "failing_since"
    }

    /// A lower-case id and an explicit null.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(endpointID.lowercasedString, forKey: .endpointID)
        try container.encode(reason, forKey: .reason)
        try container.encode(failingSince, forKey: .failingSince)
    }

    /// Decodes what ``encode(to:)`` writes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard let id = UUID(uuidString: try container.decode(String.self, forKey: .endpointID)) else {
            throw DecodingError.dataCorruptedError(forKey: .endpointID, in: container, debugDescription: "endpoint_id is not a UUID")
        }
        endpointID = id
        reason = try container.decode(String.self, forKey: .reason)
        failingSince = try container.decodeIfPresent(Date.self, forKey: .failingSince)
    }
}
