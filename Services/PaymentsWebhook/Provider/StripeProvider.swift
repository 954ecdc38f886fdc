import AsyncHTTPClient
import Foundation
import ProviderAPI
import SharedModel

/// ``PaymentProvider`` over Stripe's HTTP API (and anything compatible, such as the local simulator):
/// form-encoded `POST /v1/payment_intents` and `POST /v1/refunds` with an `Idempotency-Key` on every
/// call, and `GET /v1/refunds?payment_intent=...`; `Authorization: Bearer <key>` on all of them.
///
/// Amounts cross here between ISO 4217 minor units (ours) and Stripe's units (``ProviderCurrencyRules/stripe``:
/// ISK and UGX x100, MGA /100); an amount Stripe cannot charge is refused before any call.
struct StripeProvider: PaymentProvider {
    typealias Configuration = StripeAPIClient.Configuration

    let api: StripeAPIClient
    var name: String { "stripe" }

    init(client: HTTPClient, configuration: Configuration) {
        api = StripeAPIClient(client: client, configuration: configuration)
    }

    /// The HTTP client the provider calls go through (``StripeAPIClient/makeHTTPClient()``).
    static func makeHTTPClient() -> HTTPClient { StripeAPIClient.makeHTTPClient() }

    func createPaymentIntent(_ request: PaymentIntentRequest) async throws(PaymentProviderError) -> PaymentIntent {
        let amount = try Self.stripeAmount(request.amount)
        let object = try await api.post(
            "/v1/payment_intents",
            form: [
                ("amount", String(amount)),
                ("currency", request.amount.currency.code.lowercased()),
                ("metadata[booking_id]", request.bookingID.description),
                ("metadata[customer_id]", request.customerID.rawValue),
                ("automatic_payment_methods[enabled]", "true"),
            ],
            idempotencyKey: request.idempotencyKey)
        guard let reference = object["id"]?.stringValue, let secret = object["client_secret"]?.stringValue else {
            throw .unavailable("the provider's payment intent lacks id or client_secret")
        }
        return PaymentIntent(reference: reference, clientSecret: secret)
    }

    func createRefund(_ request: RefundRequest) async throws(PaymentProviderError) -> ProviderRefund {
        var form: [(name: String, value: String)] = [
            ("payment_intent", request.paymentReference),
            ("amount", String(try Self.stripeAmount(request.amount))),
            ("metadata[refund_id]", request.refundID.description),
        ]
        if let bookingID = request.bookingID { form.append(("metadata[booking_id]", bookingID.description)) }
        let object = try await api.post("/v1/refunds", form: form, idempotencyKey: request.idempotencyKey)
        return try Self.refund(object)
    }

    func refunds(ofPayment paymentReference: String) async throws(PaymentProviderError) -> [ProviderRefund] {
        let list = try await api.get("/v1/refunds", parameters: [("payment_intent", paymentReference), ("limit", "100")])
        guard let data = list["data"]?.arrayValue else { throw .unavailable("the provider's refund list lacks data") }
        var refunds: [ProviderRefund] = []
        for object in data { refunds.append(try Self.refund(object)) }
        return refunds
    }

    private static func refund(_ object: JSONValue) throws(PaymentProviderError) -> ProviderRefund {
        guard let reference = object["id"]?.stringValue else { throw .unavailable("the provider's refund lacks an id") }
        var amount: Int64?
        if let stripeAmount = object["amount"]?.integerValue, let currency = object["currency"]?.stringValue.flatMap({ try? Currency($0) }) {
            amount = ProviderCurrencyRules.stripe.isoAmount(providerAmount: stripeAmount, currency: currency)?.amount
        }
        return ProviderRefund(reference: reference, status: object["status"]?.stringValue ?? "pending", amount: amount)
    }

    /// `money` in Stripe's units; an amount Stripe cannot charge is a permanent refusal, made here
    /// without a call.
    private static func stripeAmount(_ money: Money) throws(PaymentProviderError) -> Int64 {
        do {
            return try ProviderCurrencyRules.stripe.providerAmount(for: money)
        } catch {
            throw .refused(status: 400, code: "amount_not_chargeable", message: "\(money.amount) \(money.currency) minor units: \(error)")
        }
    }
}
