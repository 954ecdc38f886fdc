import AsyncHTTPClient
import Foundation
import ProviderAPI
import SharedModel

/// A payout's transfer at the provider.
struct TransferRequest: Sendable, Equatable {
    var payoutID: UUID
    var amount: Money
    /// The host's payout account (`acct_...`).
    var destination: String

    /// One key per payout: a retried call (a timeout, a crash, a redelivered event) never transfers twice.
    var idempotencyKey: String { "payout-\(payoutID.lowercasedString)" }
}

/// Where payouts are transferred. ``TransferProvider`` is the real one; tests may use it against the
/// simulator.
protocol Transfers: Sendable {
    /// Transfers the payout (or, for a repeated key, returns the transfer already made): its reference, e.g. `tr_...`.
    func transfer(_ request: TransferRequest) async throws(ProviderCallError) -> String
}

/// ``Transfers`` over Stripe's `POST /v1/transfers` (amount in Stripe's units, `destination`,
/// `metadata[payout_id]`, `Idempotency-Key: payout-<id>`).
struct TransferProvider: Transfers {
    typealias Configuration = StripeAPIClient.Configuration

    /// The provider's currency rules: what it can transfer, and the steps payout runs round down to.
    static let rules = ProviderCurrencyRules.stripe

    let api: StripeAPIClient

    init(client: HTTPClient, configuration: Configuration) {
        api = StripeAPIClient(client: client, configuration: configuration)
    }

    func transfer(_ request: TransferRequest) async throws(ProviderCallError) -> String {
        let amount: Int64
        do {
            amount = try Self.rules.providerAmount(forTransfer: request.amount)
        } catch {
            throw .refused(
                status: 400, code: "amount_not_transferable", message: "\(request.amount.amount) \(request.amount.currency) minor units: \(error)")
        }
        let object = try await api.post(
            "/v1/transfers",
            form: [
                ("amount", String(amount)),
                ("currency", request.amount.currency.code.lowercased()),
                ("destination", request.destination),
                ("metadata[payout_id]", request.payoutID.lowercasedString),
            ],
            idempotencyKey: request.idempotencyKey)
        guard let reference = object["id"]?.stringValue else { throw .unavailable("the provider's transfer lacks an id") }
        return reference
    }
}
