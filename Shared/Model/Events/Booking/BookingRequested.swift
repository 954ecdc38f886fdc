import Foundation

/// `booking.requested`: a booking was created from a live hold and awaits payment.
public struct BookingRequested: DomainEvent, Hashable {
    /// `booking.requested`.
    public static var eventType: String { "booking.requested" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The new booking.
    public let bookingID: BookingID
    /// The sellable event the seats belong to.
    public let eventID: EventID
    /// The host selling the seats.
    public let hostID: HostID
    /// The customer who booked.
    public let customerID: CustomerID
    /// The booked seats.
    public let seatIDs: [SeatID]
    /// The total price (wire: `amount` + `currency`).
    public let amount: Money
    /// Payment must be made by this instant (plus grace) or the booking expires.
    public let paymentDueAt: Date

    /// Creates the event.
    public init(
        bookingID: BookingID, eventID: EventID, hostID: HostID, customerID: CustomerID,
        seatIDs: [SeatID], amount: Money, paymentDueAt: Date
    ) {
        self.bookingID = bookingID
        self.eventID = eventID
        self.hostID = hostID
        self.customerID = customerID
        self.seatIDs = seatIDs
        self.amount = amount
        self.paymentDueAt = paymentDueAt
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
        case paymentDueAt = "payment_due_at"
    }

    /// Decodes the wire form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.bookingID = try container.decode(BookingID.self, forKey: .bookingID)
        self.eventID = try container.decode(EventID.self, forKey: .eventID)
        self.hostID = try container.decode(HostID.self, forKey: .hostID)
        self.customerID = try container.decode(CustomerID.self, forKey: .customerID)
        self.seatIDs = try container.decode([SeatID].self, forKey: .seatIDs)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.paymentDueAt = try container.decodeTimestamp(forKey: .paymentDueAt)
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
        try container.encodeTimestamp(paymentDueAt, forKey: .paymentDueAt)
    }
}
