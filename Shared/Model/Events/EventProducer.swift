import Foundation

/// The envelope's `producer`: the service that published an event (extensible; any string).
public struct EventProducer: OpenStringValue {
    /// The producer name as written on the wire.
    public let rawValue: String

    /// Wraps a producer name.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The booking service, including its saga (`stream:booking`).
    public static let booking: EventProducer = "booking"
    /// The payments webhook service (`stream:payments`).
    public static let paymentsWebhook: EventProducer = "payments-webhook"
    /// The payout service (`stream:payout`).
    public static let payout: EventProducer = "payout"
    /// The notification service.
    public static let notification: EventProducer = "notification"
}
