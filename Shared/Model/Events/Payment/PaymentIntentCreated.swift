import Foundation

/// `payment.intent_created`: the provider's payment intent exists; the booking exposes it to the
/// client as `payment: {provider_ref, client_secret}`.
public struct PaymentIntentCreated: DomainEvent, Hashable {
    /// `payment.intent_created`.
    public static var eventType: String { "payment.intent_created" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The booking being paid.
    public let bookingID: BookingID
    /// The payment provider, e.g. `stripe`.
    public let provider: String
    /// The provider's reference of the intent (e.g. Stripe `pi_...`).
    public let providerRef: String
    /// The secret the customer's client uses to complete the payment. Never log it.
    public let clientSecret: String

    /// Creates the event.
    public init(bookingID: BookingID, provider: String, providerRef: String, clientSecret: String) {
        self.bookingID = bookingID
        self.provider = provider
        self.providerRef = providerRef
        self.clientSecret = clientSecret
    }

    /// The booking id.
    public var aggregateID: String { bookingID.description }

    private enum CodingKeys: String, CodingKey {
        case bookingID = "booking_id"
        case provider
        case providerRef = "provider_ref"
        case clientSecret = "client_secret"
    }
}
