import Foundation

/// One thing that happened to a booking's saga, as the decider takes it.
public enum SagaInput: Sendable {
    /// The payments service created the booking's payment intent.
    case paymentIntentCreated(PaymentIntentCreated)
    case paymentSucceeded(PaymentSucceeded)
    case paymentFailed(PaymentFailed)
    case refundSucceeded(RefundSucceeded)
    case refundFailed(RefundFailed)
    /// The customer (or an administrator) cancels the booking.
    case cancellation(CancellationReason)
    /// The saga's deadline passed: the payment's (due time and grace) while awaiting payment, the
    /// refund's bound while a cancellation's refund is pending.
    case deadlinePassed
    /// An operator resumes a `compensation_failed` saga.
    case resume(operatorName: String)
    /// An operator refunds part of a confirmed booking's payment (`note` says why).
    case partialRefund(amount: Money, note: String)

    /// The input of a payments-service event the saga reacts to; nil for any other event type.
    public init?(_ envelope: EventEnvelope) throws {
        switch envelope.type {
        case PaymentIntentCreated.eventType: self = .paymentIntentCreated(try envelope.decode(PaymentIntentCreated.self))
        case PaymentSucceeded.eventType: self = .paymentSucceeded(try envelope.decode(PaymentSucceeded.self))
        case PaymentFailed.eventType: self = .paymentFailed(try envelope.decode(PaymentFailed.self))
        case RefundSucceeded.eventType: self = .refundSucceeded(try envelope.decode(RefundSucceeded.self))
        case RefundFailed.eventType: self = .refundFailed(try envelope.decode(RefundFailed.self))
        default: return nil
        }
    }

    /// The booking an event input names (nil for a payment that names none, and for the inputs that
    /// are about a booking the caller already knows).
    public var bookingID: BookingID? {
        switch self {
        case .paymentIntentCreated(let event): event.bookingID
        case .paymentSucceeded(let event): event.bookingID
        case .paymentFailed(let event): event.bookingID
        case .refundSucceeded(let event): event.bookingID
        case .refundFailed(let event): event.bookingID
        case .cancellation, .deadlinePassed, .resume, .partialRefund: nil
        }
    }

    /// A provider's report about a refund: what the saga's refund requests are matched against.
    public var refundReport: (refundID: RefundID?, providerRef: String, amount: Money)? {
        switch self {
        case .refundSucceeded(let event): (event.refundID, event.providerRef, event.amount)
        case .refundFailed(let event): (event.refundID, event.providerRef, event.amount)
        default: nil
        }
    }
}
