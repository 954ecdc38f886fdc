import Foundation
import SharedModel

/// Reads a verified Stripe event (DESIGN.md, Stripe mapping):
///
/// - `payment_intent.succeeded` -> `payment.succeeded`, amount = `amount_received`;
/// - `payment_intent.payment_failed` -> `payment.failed`, reason = `last_payment_error.code`
///   (or its message);
/// - `charge.refunded` -> `refund.succeeded`, amount = `amount_refunded`, linked by `payment_intent`
///   and `metadata.booking_id`; the refund id is the newest refund's `metadata.refund_id` when the
///   platform asked for it;
/// - any other type is kept as `ignored`.
///
/// Currencies arrive lower case and are normalised upper case. A `metadata.booking_id` that is not a
/// booking id reads as "no booking": the payment still flows on and the saga refunds it.
enum StripeEventReader {
    static func read(_ body: [UInt8], receivedAt: Date) throws(MalformedDelivery) -> ProviderEventRecord {
        let fields = try JSONFields(bytes: body)
        let eventID = try fields.eventID("id")
        let type = try fields.string("type", maximumLength: 255)
        let created = try fields.integer("created")
        var record = ProviderEventRecord(source: .stripe, providerEventID: eventID, eventType: type)
        let providerCreatedAt = Date(timeIntervalSince1970: TimeInterval(created))
        switch type {
        case "payment_intent.succeeded":
            let intent = try intentFields(fields, into: &record, amount: "data.object.amount_received")
            record.domainEvent = PaymentSucceeded(
                paymentEventID: eventID, provider: PaymentSource.stripe.rawValue, providerRef: intent.reference,
                bookingID: record.bookingID, amount: intent.amount, providerCreatedAt: providerCreatedAt, receivedAt: receivedAt)
        case "payment_intent.payment_failed":
            let intent = try intentFields(fields, into: &record, amount: "data.object.amount")
            var reason = try fields.optionalString("data.object.last_payment_error.code")
            if reason == nil { reason = try fields.optionalString("data.object.last_payment_error.message") }
            record.domainEvent = PaymentFailed(
                paymentEventID: eventID, provider: PaymentSource.stripe.rawValue, providerRef: intent.reference,
                bookingID: record.bookingID, amount: intent.amount, providerCreatedAt: providerCreatedAt, receivedAt: receivedAt,
                reason: reason)
        case "charge.refunded":
            let reference: String
            if try fields.optionalString("data.object.payment_intent")?.isEmpty == false {
                reference = try fields.reference("data.object.payment_intent")
            } else {
                reference = try fields.reference("data.object.id")
            }
            let amount = try fields.money(amount: "data.object.amount_refunded", currency: "data.object.currency")
            record.bookingID = fields.lenientUUID("data.object.metadata.booking_id").map(BookingID.init)
            record.providerRef = reference
            record.amount = amount
            let newestRefund = (fields.value("data.object.refunds.data") as? [Any])?.first as? [String: Any]
            let refundID = ((newestRefund?["metadata"] as? [String: Any])?["refund_id"] as? String).flatMap(UUID.init(uuidString:)).map(RefundID.init)
            record.domainEvent = RefundSucceeded(refundID: refundID, bookingID: record.bookingID, providerRef: reference, amount: amount)
        default:
            break
        }
        return record
    }

    /// The payment intent's reference, amount and booking, also set on `record`.
    private static func intentFields(
        _ fields: JSONFields, into record: inout ProviderEventRecord, amount amountPath: String
    ) throws(MalformedDelivery) -> (reference: String, amount: Money) {
        let reference = try fields.reference("data.object.id")
        let amount = try fields.money(amount: amountPath, currency: "data.object.currency")
        record.bookingID = fields.lenientUUID("data.object.metadata.booking_id").map(BookingID.init)
        record.providerRef = reference
        record.amount = amount
        return (reference, amount)
    }
}
