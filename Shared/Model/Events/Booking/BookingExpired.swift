import Foundation

/// `booking.expired`: no payment arrived by `payment_due_at` plus grace; the seats are released.
public struct BookingExpired: DomainEvent, Hashable {
    /// `booking.expired`.
    public static var eventType: String { "booking.expired" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The expired booking.
    public let bookingID: BookingID

    /// Creates the event.
    public init(bookingID: BookingID) {
        self.bookingID = bookingID
    }

    /// The booking id.
    public var aggregateID: String { bookingID.description }

    private enum CodingKeys: String, CodingKey {
        case bookingID = "booking_id"
    }
}
