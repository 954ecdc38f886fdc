import SharedModel

/// The Redis streams between services (DESIGN.md, Messaging), one per producing service.
public enum Streams {
    public static let booking = "stream:booking"
    public static let payments = "stream:payments"
    public static let payout = "stream:payout"
    public static let deadLetters = "stream:dead-letters"

    /// The stream a producer's events go to.
    public static func stream(for producer: EventProducer) -> String {
        switch producer {
        case .booking: booking
        case .paymentsWebhook: payments
        case .payout: payout
        default: "stream:\(producer.rawValue)"
        }
    }

    /// The field of a stream entry that holds the event envelope (JSON).
    public static let envelopeField = "envelope"
}
