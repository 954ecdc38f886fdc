import Foundation
import SharedModel

/// A booking as stored: what was booked, for how much, and where its saga stands, with a
/// timestamp per lifecycle transition.
struct Booking: Sendable, Hashable {
    let id: BookingID
    let eventID: EventID
    let customerID: CustomerID
    let holdID: HoldID
    /// Sorted, so every representation lists them in the same order.
    let seatIDs: [SeatID]
    let status: BookingStatus
    let sagaState: SagaState
    let amount: Money
    let paymentDueAt: Date
    /// The provider's payment intent, once the payments service created it.
    let payment: Payment?
    let createdAt: Date
    let confirmedAt: Date?
    let cancelledAt: Date?
    let expiredAt: Date?
    let refundRequestedAt: Date?
    let refundedAt: Date?
    let updatedAt: Date
    /// The client application (API key) that created it: only that client (and the admin) sees it.
    /// `nil` for bookings older than client scoping that no idempotency record could attribute.
    var clientID: String?
    /// Refunds of its payment that succeeded (partial ones and a cancellation's), in minor units of
    /// its currency.
    var refundedAmount: Int64 = 0
    /// Its payment's newest dispute, if a customer disputed it (``DisputeRecorder``).
    var dispute: BookingDispute? = nil

    struct Payment: Sendable, Hashable {
        let providerRef: String
        let clientSecret: String?
    }
}

/// A booking about to be created from a live hold.
struct NewBooking: Sendable {
    let id: BookingID
    let event: SellableEvent
    let customerID: CustomerID
    let holdID: HoldID
    let seatIDs: [SeatID]
    let amount: Money
    let createdAt: Date
    let paymentDueAt: Date
    /// When the saga's deadline poller expires the booking: `payment_due_at` + grace.
    let deadline: Date
    let correlationID: String
    /// The client application creating it (``Principal/id``).
    let clientID: String

    /// Free seats: nothing to pay, so the booking is confirmed at once.
    var isFree: Bool { amount.isZero }

    /// The booking as it is stored once created: a new saga awaits payment, or (free seats) is
    /// confirmed at once.
    var booking: Booking {
        let state: SagaState = isFree ? .confirmed : .awaitingPayment
        return Booking(
            id: id, eventID: event.id, customerID: customerID, holdID: holdID, seatIDs: seatIDs, status: state.bookingStatus ?? .pendingPayment,
            sagaState: state, amount: amount, paymentDueAt: paymentDueAt, payment: nil, createdAt: createdAt,
            confirmedAt: isFree ? createdAt : nil, cancelledAt: nil, expiredAt: nil, refundRequestedAt: nil, refundedAt: nil, updatedAt: createdAt,
            clientID: clientID)
    }
}

/// The JSON form of a booking (DESIGN.md, Booking: `GET /v1/bookings/{id}`).
struct BookingBody: Encodable {
    let booking: Booking
    /// `payment.client_secret` is shown only to the client that created the booking (and in the
    /// create response, which goes to it); to anyone else, such as the admin, it is `null`.
    var showsClientSecret = true

    enum CodingKeys: String, CodingKey {
        case bookingID = "booking_id"
        case eventID = "event_id"
        case customerID = "customer_id"
        case holdID = "hold_id"
        case seatIDs = "seat_ids"
        case status
        case sagaState = "saga_state"
        case amount, currency
        case paymentDueAt = "payment_due_at"
        case payment
        case createdAt = "created_at"
        case confirmedAt = "confirmed_at"
        case cancelledAt = "cancelled_at"
        case expiredAt = "expired_at"
        case refundRequestedAt = "refund_requested_at"
        case refundedAt = "refunded_at"
        case updatedAt = "updated_at"
        case refundedAmount = "refunded_amount"
        case dispute
    }

    enum PaymentKeys: String, CodingKey {
        case providerRef = "provider_ref"
        case clientSecret = "client_secret"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(booking.id, forKey: .bookingID)
        try container.encode(booking.eventID, forKey: .eventID)
        try container.encode(booking.customerID, forKey: .customerID)
        try container.encode(HoldReference(eventID: booking.eventID, holdID: booking.holdID).token, forKey: .holdID)
        try container.encode(booking.seatIDs, forKey: .seatIDs)
        try container.encode(booking.status, forKey: .status)
        try container.encode(booking.sagaState, forKey: .sagaState)
        try container.encode(booking.amount.amount, forKey: .amount)
        try container.encode(booking.amount.currency.code, forKey: .currency)
        try container.encode(RFC3339.string(from: booking.paymentDueAt), forKey: .paymentDueAt)
        if let payment = booking.payment {
            var nested = container.nestedContainer(keyedBy: PaymentKeys.self, forKey: .payment)
            try nested.encode(payment.providerRef, forKey: .providerRef)
            try nested.encode(showsClientSecret ? payment.clientSecret : nil, forKey: .clientSecret)
        } else {
            try container.encodeNil(forKey: .payment)
        }
        try container.encode(RFC3339.string(from: booking.createdAt), forKey: .createdAt)
        try container.encode(booking.confirmedAt.map(RFC3339.string(from:)), forKey: .confirmedAt)
        try container.encode(booking.cancelledAt.map(RFC3339.string(from:)), forKey: .cancelledAt)
        try container.encode(booking.expiredAt.map(RFC3339.string(from:)), forKey: .expiredAt)
        try container.encode(booking.refundRequestedAt.map(RFC3339.string(from:)), forKey: .refundRequestedAt)
        try container.encode(booking.refundedAt.map(RFC3339.string(from:)), forKey: .refundedAt)
        try container.encode(RFC3339.string(from: booking.updatedAt), forKey: .updatedAt)
        try container.encode(booking.refundedAmount, forKey: .refundedAmount)
        try container.encode(booking.dispute, forKey: .dispute)
    }
}
