import Foundation

/// `booking.confirmed`: a matching payment arrived in time, or the booking costs nothing (free seats,
/// confirmed at once with no payment); the seats are sold.
public struct BookingConfirmed: DomainEvent, Hashable {
    /// `booking.confirmed`.
    public static var eventType: String { "booking.confirmed" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The confirmed booking.
    public let bookingID: BookingID
    /// The sellable event the seats belong to.
    public let eventID: EventID
    /// The host selling the seats (the payee of the payout).
    public let hostID: HostID
    /// The customer who booked.
    public let customerID: CustomerID
    /// The sold seats.
    public let seatIDs: [SeatID]
    /// The amount paid (wire: `amount` + `currency`).
    public let amount: Money
    /// The payment provider's reference of the payment (e.g. Stripe `pi_...`); `nil` (wire: `null`) for a
    /// free booking, which has no payment.
    public let providerRef: String?
    /// When the booking was confirmed.
    public let confirmedAt: Date
    /// When the sellable event ends (payouts settle after it).
    public let eventEndsAt: Date

    /// Creates the event.
    public init(
        bookingID: BookingID, eventID: EventID, hostID: HostID, customerID: CustomerID, seatIDs: [SeatID],
        amount: Money, providerRef: String?, confirmedAt: Date, eventEndsAt: Date
    ) {
        self.bookingID = bookingID
        self.eventID = eventID
        self.hostID = hostID
        self.customerID = customerID
        self.seatIDs = seatIDs
        self.amount = amount
        self.providerRef = providerRef
        self.confirmedAt = confirmedAt
        self.eventEndsAt = eventEndsAt
    }

    /// The booking id.
    public var aggregateID: String { bookingID.description }

    private enum CodingKeys: String, CodingKey {
        case bookingID = "booking_id"
        case eventID = "event_id"
        case hostID = "host_id"
        case customerID = "customer_id"
        case seatIDs = "seat_ids"
        case amount
        case currency
        case providerRef = "provider_ref"
        case confirmedAt = "confirmed_at"
        case eventEndsAt = "event_ends_at"
    }

    /// Decodes the wire form; `provider_ref` may be `null` (a free booking).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.bookingID = try container.decode(BookingID.self, forKey: .bookingID)
        self.eventID = try container.decode(EventID.self, forKey: .eventID)
        self.hostID = try container.decode(HostID.self, forKey: .hostID)
        self.customerID = try container.decode(CustomerID.self, forKey: .customerID)
        self.seatIDs = try container.decode([SeatID].self, forKey: .seatIDs)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.providerRef = try container.decodeIfPresent(String.self, forKey: .providerRef)
        self.confirmedAt = try container.decodeTimestamp(forKey: .confirmedAt)
        self.eventEndsAt = try container.decodeTimestamp(forKey: .eventEndsAt)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookingID, forKey: .bookingID)
        try container.encode(eventID, forKey: .eventID)
        try container.encode(hostID, forKey: .hostID)
        try container.encode(customerID, forKey: .customerID)
        try container.encode(seatIDs, forKey: .seatIDs)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encodeNullable(providerRef, forKey: .providerRef)
        try container.encodeTimestamp(confirmedAt, forKey: .confirmedAt)
        try container.encodeTimestamp(eventEndsAt, forKey: .eventEndsAt)
    }
}
