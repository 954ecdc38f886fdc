import Foundation
import Logging
import Messaging
import Metrics
import Postgres
import ProviderAPI
import SharedModel

/// The consumer group `payout-transfers` on `stream:payout`: transfers each announced payout.
///
/// On `payout.created` the payout, if still pending, is transferred with the key `payout-<id>`:
/// - accepted: `paid` with the provider's reference, and `payout.paid`;
/// - refused for good (a 4xx): `failed` with the provider's answer, its items released so its entries
///   are payable again for the next run, and `payout.failed`;
/// - anything else (timeout, 5xx, 429, our credentials) throws: the consumer retries with backoff
///   and the same key, and dead-letters after its attempts; the payout stays pending until an
///   operator replays it.
///
/// The provider is called outside any transaction; the answer commits afterwards with the inbox row.
/// A crash between the two repeats the call with the same key, which the provider answers with the
/// same transfer.
struct TransferWorker: StreamHandler {
    static let group = "payout-transfers"

    let transfers: any Transfers
    let logger: Logger
    let clock: WallClock
    /// `payout_payouts_total{status}` of transfers the provider accepted and refused, registered at zero.
    let paid = Counter(label: "payout_payouts_total", dimensions: [("status", "paid")])
    let refused = Counter(label: "payout_payouts_total", dimensions: [("status", "failed")])

    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        guard envelope.type == PayoutCreated.eventType else { return }
        let payout = try envelope.decode(PayoutCreated.self).payout
        let payoutID = payout.payoutID
        guard let state = try await context.read({ try PayoutStore.transferState(of: payoutID, in: $0) }), state.status == "pending" else {
            return
        }
        var metadata: Logger.Metadata = [
            "payout_id": "\(payoutID.lowercasedString)", "host_id": "\(payout.hostID)", "correlation_id": "\(envelope.correlationID)",
        ]
        let answer: Result<String, ProviderCallError>
        do {
            answer = .success(
                try await transfers.transfer(TransferRequest(payoutID: payoutID, amount: payout.amount, destination: state.destination)))
        } catch {
            answer = .failure(error)
        }
        let now = clock.now()
        switch answer {
        case .success(let reference):
            let draft = try EventEnvelope(
                event: PayoutPaid(payout: payout, providerRef: reference), causedBy: envelope, occurredAt: now, sequence: 0, producer: .payout)
            try await context.commit { transaction in
                guard try PayoutStore.markPaid(payoutID, reference: reference, at: now, in: transaction) else { return }
                try Outbox.enqueue(drafts: [draft], after: [], in: transaction)
            }
            metadata["provider_ref"] = "\(reference)"
            paid.increment()
            logger.info("payout transferred", metadata: metadata)
        case .failure(.refused(let status, let code, let message)):
            let error = "\(status)\(code.map { " \($0)" } ?? ""): \(message)"
            let draft = try EventEnvelope(
                event: PayoutFailed(payout: payout, error: error), causedBy: envelope, occurredAt: now, sequence: 0, producer: .payout)
            try await context.commit { transaction in
                guard try PayoutStore.markFailed(payoutID, error: error, at: now, in: transaction) else { return }
                try Outbox.enqueue(drafts: [draft], after: [], in: transaction)
            }
            metadata["error"] = "\(error)"
            refused.increment()
            logger.warning("the provider refused a payout; its entries are payable again", metadata: metadata)
        case .failure(let error):
            throw error
        }
    }
}
