import Foundation

/// Namespace for the tags of every identifier in the product.
public enum IdentifierTags {
    /// Tags ``BookingID``.
    public enum Booking: IdentifierTag {
        /// Bookings are identified by UUIDs the booking service creates.
        public typealias RawValue = UUID
        /// The wire name.
        public static var name: String { "booking_id" }
    }

    /// Tags ``HoldID``.
    public enum Hold: IdentifierTag {
        /// Holds are identified by random UUIDs; the id is also the fencing token of the hold.
        public typealias RawValue = UUID
        /// The wire name.
        public static var name: String { "hold_id" }
        /// A hold's id is its fencing token: random, revealing nothing.
        public static var isSecret: Bool { true }
    }

    /// Tags ``EventID`` (the sellable event, e.g. a concert).
    public enum Event: IdentifierTag {
        /// Sellable events are identified by UUIDs the booking service creates.
        public typealias RawValue = UUID
        /// The wire name.
        public static var name: String { "event_id" }
    }

    /// Tags ``RefundID``.
    public enum Refund: IdentifierTag {
        /// Refunds are identified by UUIDs the saga creates when it requests one.
        public typealias RawValue = UUID
        /// The wire name.
        public static var name: String { "refund_id" }
    }

    /// Tags ``EnvelopeID``.
    public enum Envelope: IdentifierTag {
        /// Event envelopes are identified by time-ordered UUIDs.
        public typealias RawValue = UUID
        /// The wire name.
        public static var name: String { "id" }
    }

    /// Tags ``SeatID``.
    public enum Seat: IdentifierTag {
        /// Seats are named by hosts (e.g. `A-12`).
        public typealias RawValue = String
        /// The wire name.
        public static var name: String { "seat_id" }
    }

    /// Tags ``CustomerID``.
    public enum Customer: IdentifierTag {
        /// Customers are identified by the client application (e.g. `cus_123`).
        public typealias RawValue = String
        /// The wire name.
        public static var name: String { "customer_id" }
    }

    /// Tags ``HostID``.
    public enum Host: IdentifierTag {
        /// Hosts are identified by the strings the platform's admin assigns.
        public typealias RawValue = String
        /// The wire name.
        public static var name: String { "host_id" }
    }

    /// Tags ``PaymentEventID``.
    public enum PaymentEvent: IdentifierTag {
        /// Provider event ids (Stripe `evt_...`, internal `webhook-id`s) are opaque strings.
        public typealias RawValue = String
        /// The wire name.
        public static var name: String { "payment_event_id" }
    }
}

/// Identifies a booking (UUID).
public typealias BookingID = Identifier<IdentifierTags.Booking>
/// Identifies a seat hold (random UUID; also the hold's fencing token).
public typealias HoldID = Identifier<IdentifierTags.Hold>
/// Identifies a sellable event such as a concert or a class (UUID) - not an event envelope.
public typealias EventID = Identifier<IdentifierTags.Event>
/// Identifies a refund the platform requested (UUID).
public typealias RefundID = Identifier<IdentifierTags.Refund>
/// Identifies one event envelope on a stream (UUID); the key of consumers' inboxes.
public typealias EnvelopeID = Identifier<IdentifierTags.Envelope>
/// Another name for ``EnvelopeID``: the id of a message on a stream.
public typealias MessageID = EnvelopeID
/// Identifies a seat within a sellable event (validated string, e.g. `A-12`).
public typealias SeatID = Identifier<IdentifierTags.Seat>
/// Identifies a customer of a client application (validated string, e.g. `cus_123`).
public typealias CustomerID = Identifier<IdentifierTags.Customer>
/// Identifies a host who sells seats (validated string).
public typealias HostID = Identifier<IdentifierTags.Host>
/// Identifies a payment provider's event (validated string, e.g. Stripe's `evt_...`).
public typealias PaymentEventID = Identifier<IdentifierTags.PaymentEvent>
