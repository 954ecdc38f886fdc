import Foundation
import SharedModel

/// Reads a verified internal payment event (DESIGN.md, `POST /v1/payment-events`):
/// `{id, type, booking_id, amount, currency, provider_ref, occurred_at}`, plus the optional
/// `reason` (`payment.failed`), `refund_id` (refunds) and `error` (`refund.failed`).
///
/// Internal services are held to the contract: a `booking_id` that is neither `null` nor a UUID makes
/// the body malformed (400, kept), unlike a provider's free-form metadata. Types other than the four
/// below are kept as `ignored`.
enum PaymentEventReader {
    static let types = ["payment.succeeded", "payment.failed", "refund.succeeded", "refund.failed"]

    static func read(_ body: [UInt8], receivedAt: Date) throws(MalformedDelivery) -> ProviderEventRecord {
        let fields = try JSONFields(bytes: body)
        let eventID = try fields.eventID("id")
        let type = try fields.string("type", maximumLength: 255)
        var record = ProviderEventRecord(source: .internal, providerEventID: eventID, eventType: type)
        guard types.contains(type) else { return record }

        let bookingID = try fields.strictUUID("booking_id").map(BookingID.init)
        let amount = try fields.money(amount: "amount", currency: "currency", upperCaseOnly: true)
        let reference = try fields.reference("provider_ref")
        let occurredAt: Date
        do {
            occurredAt = try RFC3339.date(from: try fields.string("occurred_at"))
        } catch let error as MalformedDelivery {
            throw error
        } catch {
            throw MalformedDelivery(reason: "occurred_at must be an RFC 3339 timestamp with an offset")
        }
        record.bookingID = bookingID
        record.providerRef = reference
        record.amount = amount
        let provider = PaymentSource.internal.rawValue
        switch type {
        case "payment.succeeded":
            record.domainEvent = PaymentSucceeded(
                paymentEventID: eventID, provider: provider, providerRef: reference, bookingID: bookingID, amount: amount,
                providerCreatedAt: occurredAt, receivedAt: receivedAt)
        case "payment.failed":
            record.domainEvent = PaymentFailed(
                paymentEventID: eventID, provider: provider, providerRef: reference, bookingID: bookingID, amount: amount,
                providerCreatedAt: occurredAt, receivedAt: receivedAt, reason: try fields.optionalString("reason"),
                isFinal: try fields.optionalBoolean("final") ?? true)
        case "refund.succeeded":
            let refundID = try fields.strictUUID("refund_id").map(RefundID.init)
            record.domainEvent = RefundSucceeded(refundID: refundID, bookingID: bookingID, providerRef: reference, amount: amount)
        default:
            let refundID = try fields.strictUUID("refund_id").map(RefundID.init)
            record.domainEvent = RefundFailed(
                refundID: refundID, bookingID: bookingID, providerRef: reference, amount: amount, error: try fields.optionalString("error"))
        }
        return record
    }
}
