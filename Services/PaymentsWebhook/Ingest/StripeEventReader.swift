import Foundation
import SharedModel

/// Reads a verified Stripe event (DESIGN.md, Stripe mapping):
///
/// - `payment_intent.succeeded` -> `payment.succeeded`, amount = `amount_received`;
/// - `payment_intent.payment_failed` -> `payment.failed` with `final: false` (the customer may retry
///   the same intent), reason = `last_payment_error.code` (or its message);
/// - `payment_intent.canceled` -> `payment.failed` with `final: true`, reason = `cancellation_reason`;
/// - `charge.refunded` -> `refund.succeeded` for **this** refund (the newest in the charge's
///   `refunds`), never the cumulative `amount_refunded`; linked by `payment_intent` and
///   `metadata.booking_id`; the refund id is that refund's `metadata.refund_id` when the platform
///   asked for it, and its `re_` id is carried as `provider_refund_ref`;
/// - `charge.dispute.created` and `charge.dispute.funds_withdrawn` -> `payment.disputed`, and
///   `charge.dispute.closed` -> `payment.dispute_closed` (`won` and `warning_closed` are won, `lost`
///   lost; another status is malformed), keyed by the dispute's `dp_` id, with the dispute's `amount`;
///   the dispute does not carry the payment's metadata, so its booking is looked up by
///   `payment_intent` (or `charge`) when the event is stored (``ProviderEventStore``);
/// - any other type is kept as `ignored` (e.g. `charge.dispute.funds_reinstated`: a won dispute's
///   closing already says the money is back).
///
/// Currencies arrive lower case and are normalised upper case; amounts arrive in Stripe's units and are
/// read as ISO 4217 minor units (``ProviderCurrencyRules/stripe``: ISK and UGX /100, MGA x100). A `metadata.booking_id` that is not a
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
        case "payment_intent.payment_failed", "payment_intent.canceled":
            // A failed attempt leaves the intent open for another (not final); a canceled intent can never succeed.
            let isFinal = type == "payment_intent.canceled"
            let intent = try intentFields(fields, into: &record, amount: "data.object.amount")
            var reason = try fields.optionalString(isFinal ? "data.object.cancellation_reason" : "data.object.last_payment_error.code")
            if reason == nil, !isFinal { reason = try fields.optionalString("data.object.last_payment_error.message") }
            record.domainEvent = PaymentFailed(
                paymentEventID: eventID, provider: PaymentSource.stripe.rawValue, providerRef: intent.reference,
                bookingID: record.bookingID, amount: intent.amount, providerCreatedAt: providerCreatedAt, receivedAt: receivedAt,
                reason: reason ?? (isFinal ? "canceled" : nil), isFinal: isFinal)
        case "charge.refunded":
            let reference: String
            if try fields.optionalString("data.object.payment_intent")?.isEmpty == false {
                reference = try fields.reference("data.object.payment_intent")
            } else {
                reference = try fields.reference("data.object.id")
            }
            let refund = try thisRefund(fields)
            record.bookingID = fields.lenientUUID("data.object.metadata.booking_id").map(BookingID.init)
            record.providerRef = reference
            record.amount = refund.amount
            record.domainEvent = RefundSucceeded(
                refundID: refund.refundID, bookingID: record.bookingID, providerRef: reference, amount: refund.amount,
                providerRefundRef: refund.providerRefundRef)
        case "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.closed":
            let dispute = try disputeReport(fields, eventID: eventID, closes: type == "charge.dispute.closed", createdAt: providerCreatedAt)
            record.providerRef = dispute.providerRef
            record.amount = dispute.amount
            record.dispute = dispute
        default:
            break
        }
        return record
    }

    /// The dispute at `data.object`; a closing one must end `won`, `warning_closed` or `lost`.
    private static func disputeReport(
        _ fields: JSONFields, eventID: PaymentEventID, closes: Bool, createdAt: Date
    ) throws(MalformedDelivery) -> DisputeReport {
        let disputeRef = try fields.reference("data.object.id")
        let payment: String
        if try fields.optionalString("data.object.payment_intent")?.isEmpty == false {
            payment = try fields.reference("data.object.payment_intent")
        } else {
            payment = try fields.reference("data.object.charge")
        }
        let amount = try iso(try fields.money(amount: "data.object.amount", currency: "data.object.currency"), "data.object.amount")
        guard amount.amount > 0 else { throw MalformedDelivery(reason: "data.object.amount must be positive") }
        let status = try fields.string("data.object.status", maximumLength: 64)
        var outcome: DisputeOutcome?
        if closes {
            switch status {
            case "won", "warning_closed": outcome = .won
            case "lost": outcome = .lost
            default: throw MalformedDelivery(reason: "data.object.status of a closed dispute must be won, warning_closed or lost")
            }
        }
        return DisputeReport(
            paymentEventID: eventID, source: .stripe, disputeRef: disputeRef, providerRef: payment, amount: amount,
            reason: try fields.optionalString("data.object.reason", maximumLength: 255), status: status, providerCreatedAt: createdAt,
            outcome: outcome)
    }

    /// The refund a `charge.refunded` event reports, never the charge's cumulative `amount_refunded`:
    /// the newest entry of the charge's `refunds` list (Stripe lists newest first) with its amount, `re_`
    /// id and our `metadata.refund_id`; without that list (newer API versions leave it out), the growth
    /// of `amount_refunded` over `previous_attributes.amount_refunded` (0 when absent: the first refund).
    private static func thisRefund(
        _ fields: JSONFields
    ) throws(MalformedDelivery) -> (amount: Money, refundID: RefundID?, providerRefundRef: String?) {
        let cumulative = try iso(try fields.money(amount: "data.object.amount_refunded", currency: "data.object.currency"), "amount_refunded")
        if let newest = fields.value("data.object.refunds.data")?.arrayValue?.first {
            guard let newest = newest.objectValue, case .integer(let minor)? = newest["amount"], minor > 0,
                (try? iso(Money(amount: minor, currency: cumulative.currency), "")).map({ $0.amount <= cumulative.amount }) == true
            else {
                throw MalformedDelivery(reason: "data.object.refunds.data[0].amount must be a positive integer within amount_refunded")
            }
            let refundID = newest["metadata"]?.objectValue?["refund_id"]?.stringValue.flatMap(UUID.init(uuidString:)).map(RefundID.init)
            let reference = newest["id"]?.stringValue.flatMap { $0.isEmpty || $0.utf8.count > 255 ? nil : $0 }
            return (try iso(Money(amount: minor, currency: cumulative.currency), "refunds.data[0].amount"), refundID, reference)
        }
        let previous =
            fields.has("data.previous_attributes.amount_refunded") ? try fields.integer("data.previous_attributes.amount_refunded") : 0
        guard previous >= 0, previous < cumulative.amount else {
            throw MalformedDelivery(reason: "amount_refunded must grow over previous_attributes.amount_refunded")
        }
        return (Money(amount: cumulative.amount - previous, currency: cumulative.currency), nil, nil)
    }

    /// A Stripe amount as ISO 4217 minor units; malformed when it has no exact ISO value.
    private static func iso(_ stripe: Money, _ path: String) throws(MalformedDelivery) -> Money {
        guard let money = ProviderCurrencyRules.stripe.isoAmount(providerAmount: stripe.amount, currency: stripe.currency) else {
            throw MalformedDelivery(reason: "\(path) is not a whole number of \(stripe.currency) minor units")
        }
        return money
    }

    /// The payment intent's reference, amount and booking, also set on `record`.
    private static func intentFields(
        _ fields: JSONFields, into record: inout ProviderEventRecord, amount amountPath: String
    ) throws(MalformedDelivery) -> (reference: String, amount: Money) {
        let reference = try fields.reference("data.object.id")
        let amount = try iso(try fields.money(amount: amountPath, currency: "data.object.currency"), amountPath)
        record.bookingID = fields.lenientUUID("data.object.metadata.booking_id").map(BookingID.init)
        record.providerRef = reference
        record.amount = amount
        return (reference, amount)
    }
}
