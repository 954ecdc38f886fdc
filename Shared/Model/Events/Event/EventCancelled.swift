import Foundation

/// `event.cancelled`: the host or an operator cancelled a sellable event. No new holds or bookings
/// are taken from now on; the booking service then cancels every booking awaiting payment and refunds
/// every confirmed one in full (each reported by its own `booking.cancelled` and refund events).
public struct EventCancelled: DomainEvent, Hashable {
    /// `event.cancelled`.
    public static var eventType: String { "event.cancelled" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The cancelled event.
    public let eventID: EventID
    /// Its host.
    public let hostID: HostID
    /// Why, as the host or operator gave it.
    public let reason: String
    /// When the cancellation committed.
    public let cancelledAt: Date
    /// Bookings awaiting payment or confirmed at that moment: the bookings the cancellation cancels.
    public let bookings: Int

    /// Creates the event.
    public init(eventID: EventID, hostID: HostID, reason: String, cancelledAt: Date, bookings: Int) {
        self.eventID = eventID
        self.hostID = hostID
        self.reason = reason
        self.cancelledAt = cancelledAt
        self.bookings = bookings
    }

    /// The event id.
    public var aggregateID: String { eventID.description }

    private enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case hostID = "host_id"
        case reason
        case cancelledAt = "cancelled_at"
        case bookings
    }

    /// Decodes the wire form (`cancelled_at` in RFC 3339).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.eventID = try container.decode(EventID.self, forKey: .eventID)
        self.hostID = try container.decode(HostID.self, forKey: .hostID)
        self.reason = try container.decode(String.self, forKey: .reason)
        self.cancelledAt = try container.decodeTimestamp(forKey: .cancelledAt)
        self.bookings = try container.decode(Int.self, forKey: .bookings)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(eventID, forKey: .eventID)
        try container.encode(hostID, forKey: .hostID)
        try container.encode(reason, forKey: .reason)
        try container.encodeTimestamp(cancelledAt, forKey: .cancelledAt)
        try container.encode(bookings, forKey: .bookings)
    }
}
