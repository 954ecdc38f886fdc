import Foundation

/// `payment.requested`: the saga asks the payments service to create the provider's payment intent.
public struct PaymentRequested: DomainEvent, Hashable {
    /// `payment.requested`.
    public static var eventType: String { "payment.requested" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The booking to be paid (the intent's `metadata.booking_id`).
    public let bookingID: BookingID
    /// The amount to charge (wire: `amount` + `currency`).
    public let amount: Money
    /// The paying customer.
    public let customerID: CustomerID
    /// The key the payments service sends to the provider so a retry never creates a second intent.
    public let idempotencyKey: String

    /// Creates the event.
    public init(bookingID: BookingID, amount: Money, customerID: CustomerID, idempotencyKey: String) {
        self.bookingID = bookingID
        self.amount = amount
        self.customerID = customerID
        self.idempotencyKey = idempotencyKey
    }

    /// The booking id.
    public var aggregateID: String { bookingID.description }

    private enum CodingKeys: String, CodingKey {
        case bookingID = "booking_id"
        case amount
        case currency
        case customerID = "customer_id"
        case idempotencyKey = "idempotency_key"
    }

    /// Decodes the wire form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.bookingID = try container.decode(BookingID.self, forKey: .bookingID)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.customerID = try container.decode(CustomerID.self, forKey: .customerID)
        self.idempotencyKey = try container.decode(String.self, forKey: .idempotencyKey)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookingID, forKey: .bookingID)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encode(customerID, forKey: .customerID)
        try container.encode(idempotencyKey, forKey: .idempotencyKey)
    }
}
