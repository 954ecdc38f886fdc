import Foundation
import ProviderAPI
import SharedModel

/// The payment provider the worker calls. Every call carries an idempotency key, so a retried call
/// (after a timeout, a crash, a redelivered event) never creates a second intent or refund.
protocol PaymentProvider: Sendable {
    /// The provider's name as events carry it, e.g. `stripe`.
    var name: String { get }
    /// Creates (or, for a repeated key, returns) the payment intent of a booking.
    func createPaymentIntent(_ request: PaymentIntentRequest) async throws(PaymentProviderError) -> PaymentIntent
    /// Asks for a refund of a payment (or, for a repeated key, returns the one already made).
    func createRefund(_ request: RefundRequest) async throws(PaymentProviderError) -> ProviderRefund
    /// The refunds the provider holds for a payment, newest first (whatever key created them).
    func refunds(ofPayment paymentReference: String) async throws(PaymentProviderError) -> [ProviderRefund]
}

struct PaymentIntentRequest: Sendable, Equatable {
    var bookingID: BookingID
    var customerID: CustomerID
    var amount: Money
    var idempotencyKey: String
}

struct PaymentIntent: Sendable, Equatable {
    /// The provider's reference, e.g. `pi_...`.
    var reference: String
    /// For the customer's client; never logged.
    var clientSecret: String
}

struct RefundRequest: Sendable, Equatable {
    var refundID: RefundID
    var bookingID: BookingID?
    /// The payment to refund, e.g. `pi_...`.
    var paymentReference: String
    var amount: Money
    var idempotencyKey: String
}

struct ProviderRefund: Sendable, Equatable {
    /// The provider's refund reference, e.g. `re_...`.
    var reference: String
    /// `succeeded`, `pending`, `requires_action`, `failed` or `canceled` (Stripe's refund statuses).
    var status: String
    /// In minor units of the payment's currency; `nil` when the provider did not say.
    var amount: Int64?

    /// Whether the money is back with the customer or on its way there (`failed` and `canceled` are not).
    var isSucceededOrPending: Bool { ["succeeded", "pending", "requires_action"].contains(status) }
}

/// How a provider call failed (``ProviderCallError``).
typealias PaymentProviderError = ProviderCallError
