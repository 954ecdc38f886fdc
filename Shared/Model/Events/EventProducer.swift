import Foundation

/// The envelope's `producer`: the service that published an event (extensible; any string).
public struct EventProducer: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The producer name as written on the wire.
    public let rawValue: String

    /// Wraps a producer name.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A producer name literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Decodes a single string.
    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    /// Encodes a single string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The producer name.
    public var description: String { rawValue }

    /// The booking service, including its saga (`stream:booking`).
    public static let booking: EventProducer = "booking"
    /// The payments webhook service (`stream:payments`).
    public static let paymentsWebhook: EventProducer = "payments-webhook"
    /// The payout service (`stream:payout`).
    public static let payout: EventProducer = "payout"
    /// The notification service.
    public static let notification: EventProducer = "notification"
}
