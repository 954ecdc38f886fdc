import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServiceKit
import SharedModel

/// ``PaymentProvider`` over Stripe's HTTP API (and anything compatible, such as the local simulator):
/// form-encoded `POST /v1/payment_intents` and `POST /v1/refunds` with an `Idempotency-Key` on every
/// call, and `GET /v1/refunds?payment_intent=...`; `Authorization: Bearer <key>` on all of them.
///
/// Amounts cross here between ISO 4217 minor units (ours) and Stripe's units (``ProviderCurrencyRules/stripe``:
/// ISK and UGX x100, MGA /100); an amount Stripe cannot charge is refused before any call.
struct StripeProvider: PaymentProvider {
    struct Configuration: Sendable {
        /// e.g. `https://api.stripe.com`, without a trailing slash.
        var baseURL: String
        /// The secret API key. Never logged.
        var apiKey: String
        var timeout: Duration
    }

    let client: HTTPClient
    let configuration: Configuration
    var name: String { "stripe" }

    /// The HTTP client the provider calls go through. A refused connection fails the call at once (the
    /// consumer's own backoff retries it) instead of being retried inside the client until the timeout.
    static func makeHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(5))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    func createPaymentIntent(_ request: PaymentIntentRequest) async throws(PaymentProviderError) -> PaymentIntent {
        let amount = try Self.stripeAmount(request.amount)
        let object = try await post(
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
        let object = try await post("/v1/refunds", form: form, idempotencyKey: request.idempotencyKey)
        return try Self.refund(object)
    }

    func refunds(ofPayment paymentReference: String) async throws(PaymentProviderError) -> [ProviderRefund] {
        var request = HTTPClientRequest(
            url: configuration.baseURL + "/v1/refunds?" + StripeForm(pairs: [("payment_intent", paymentReference), ("limit", "100")]).encoded)
        request.method = .GET
        let list = try await send(request)
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

    /// POSTs the form and returns the JSON object of a 2xx answer; classifies everything else.
    private func post(_ path: String, form: [(name: String, value: String)], idempotencyKey: String) async throws(PaymentProviderError) -> JSONValue {
        var request = HTTPClientRequest(url: configuration.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Idempotency-Key", value: idempotencyKey)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: StripeForm(pairs: form).encoded))
        return try await send(request)
    }

    /// Sends `request` with the API key and returns the JSON object of a 2xx answer; classifies
    /// everything else.
    private func send(_ request: HTTPClientRequest) async throws(PaymentProviderError) -> JSONValue {
        var request = request
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.apiKey)")
        let status: Int
        let body: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: .milliseconds(configuration.timeout.wholeMilliseconds))
            status = Int(response.status.code)
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw .unavailable("the provider could not be reached: \(error)")
        }
        let json = try? JSONDecoder.platform.decode(JSONValue.self, from: Data(buffer: body))
        switch status {
        case 200..<300:
            guard let json, json.objectValue != nil else { throw .unavailable("the provider answered \(status) without a JSON object") }
            return json
        case 401, 403, 409, 429, 500...:
            throw .unavailable("the provider answered \(status)\(json.flatMap(Self.errorMessage).map { ": \($0)" } ?? "")")
        default:
            throw .refused(
                status: status, code: json?["error"]?["code"]?.stringValue,
                message: json.flatMap(Self.errorMessage) ?? "the provider refused the request with \(status)")
        }
    }

    private static func errorMessage(_ json: JSONValue) -> String? {
        json["error"]?["message"]?.stringValue
    }
}
