import Foundation
import Postgres
import SharedModel

/// A refund the saga asked the payments service for (`booking.refund_requests`), as read inside a
/// transition: what a provider's `refund.succeeded` / `refund.failed` must match before it moves a saga.
struct RefundRequestRecord: Sendable {
    /// Why the refund was asked for.
    enum Purpose: String, Sendable {
        /// The booking's own payment, refunded because the booking was cancelled (or resumed by an operator).
        case cancellation
        /// A payment the booking must not keep (late, mismatched, duplicate, for no known booking).
        case compensation
    }

    enum Status: String, Sendable {
        case requested, succeeded, failed
    }

    let refundID: RefundID
    let bookingID: BookingID?
    let purpose: Purpose
    let providerRef: String
    let amount: Money
    let status: Status
    /// Whether this is its booking's newest cancellation refund: the one the saga waits for.
    let isCurrent: Bool

    static let select = """
        SELECT r.refund_id, r.booking_id, r.purpose, r.provider_ref, r.amount, r.currency, r.status,
            r.refund_id = (
                SELECT c.refund_id FROM booking.refund_requests c WHERE c.booking_id = r.booking_id AND c.purpose = 'cancellation'
                ORDER BY c.requested_at DESC, c.refund_id DESC LIMIT 1
            ) AS is_current
        FROM booking.refund_requests r
        """

    init(_ row: PostgresRow) throws {
        refundID = RefundID(try row.decode(UUID.self, at: 0))
        bookingID = try row.decode(UUID?.self, at: 1).map(BookingID.init)
        let purposeText = try row.decode(String.self, at: 2)
        guard let purpose = Purpose(rawValue: purposeText) else { throw InventoryCorrupted(description: "unknown refund purpose \(purposeText)") }
        self.purpose = purpose
        providerRef = try row.decode(String.self, at: 3)
        amount = Money(amount: try row.decode(Int64.self, at: 4), currency: try Currency(try row.decode(String.self, at: 5)))
        let statusText = try row.decode(String.self, at: 6)
        guard let status = Status(rawValue: statusText) else { throw InventoryCorrupted(description: "unknown refund status \(statusText)") }
        self.status = status
        isCurrent = try row.decode(Bool?.self, at: 7) ?? false
    }
}
