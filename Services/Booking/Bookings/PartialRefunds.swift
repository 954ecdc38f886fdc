import Crypto
import Foundation
import Hummingbird
import Messaging
import Postgres
import ServiceKit
import SharedModel

/// Partial refunds (issue 18 item 2): `POST /v1/bookings/{id}/refunds` (admin) `{amount, note}` with
/// an `Idempotency-Key` refunds part of a confirmed booking's payment through the saga
/// (``SagaInput/partialRefund(amount:note:)``) and the payments service's provider worker; the booking
/// stays confirmed. At most what was paid less the partial refunds asked for and not failed: the saga
/// row is locked before the sum is read, so concurrent requests are decided one after the other and
/// together never exceed the payment (422 `refund_exceeds_payment` with `details.refundable`). A booking
/// that is not confirmed is 409 `not_refundable` with `details.saga_state`. 202 and the 4xx answers are
/// stored under the key (24 h) and replayed; the audit row (`booking.partially_refunded`) is written
/// with the request.
struct PartialRefunds: Sendable {
    let postgres: PostgresClient
    let runner: SagaRunner
    var clock: WallClock = .system
    var keyLifetime: Duration = .seconds(24 * 3600)

    static func scope(_ booking: BookingID) -> String { "POST /v1/bookings/\(booking)/refunds" }

    struct Outcome: Sendable {
        let response: StoredResponse
        let replayed: Bool
        /// The key was used with another request (422, not stored).
        let keyReused: Bool
    }

    /// Refunds `amount` minor units of booking `id`'s payment (in its currency); nil when there is no
    /// such booking.
    func refund(_ id: BookingID, amount: Int64, note: String, key: String, correlationID: String, audit: AuditRecord?) async throws -> Outcome? {
        let now = clock.now()
        let claim = IdempotencyClaim(
            client: "admin", scope: Self.scope(id), key: key,
            requestHash: Array(SHA256.hash(data: Array("\(id)\u{0}\(amount)\u{0}\(note)".utf8))), expiresAt: now.adding(keyLifetime), now: now)
        let (runner, clock) = (self.runner, self.clock)
        return try await postgres.withTransaction { transaction -> Outcome? in
            if let stored = try PostgresBookingRepository.lockKey(claim, in: transaction) {
                return Outcome(response: stored, replayed: true, keyReused: stored.requestHash != claim.requestHash)
            }
            guard let saga = try SagaRepository(transaction: transaction).snapshot(of: id, locking: true) else { return nil }
            let run = try runner.run(
                .partialRefund(amount: Money(amount: amount, currency: saga.amount.currency), note: note), saga: saga,
                cause: .correlated(correlationID), at: now, in: transaction)
            let status: Int
            let body: [UInt8]
            switch run.verdict {
            case .partialRefundRequested(let request):
                status = 202
                body = Array(try JSONEncoder.platform.encode(Receipt(request: request, note: note, requestedAt: now)))
                try AuditLog.record(
                    audit?.with(
                        targetID: id.description, details: ["refund_id": .string(request.refundID.description), "amount": .integer(amount)]),
                    clock: clock, in: transaction)
            case .notRefundable(let state):
                let error = APIError.conflict(
                    "not_refundable", "only a confirmed booking can be refunded in part; this one is \(state.rawValue)",
                    details: ["saga_state": .string(state.rawValue)])
                (status, body) = (error.status.code, Array(try JSONEncoder.platform.encode(error.body)))
            case .refundExceedsPayment(let refundable):
                let error = APIError.unprocessable(
                    "refund_exceeds_payment",
                    "at most \(refundable.amount) \(refundable.currency.code) minor units are left to refund (the amount paid less the refunds asked for)",
                    details: ["refundable": .integer(refundable.amount), "currency": .string(refundable.currency.code)])
                (status, body) = (error.status.code, Array(try JSONEncoder.platform.encode(error.body)))
            default:
                throw SagaInconsistency("a partial refund of booking \(id) decided \(run.verdict)")
            }
            let response = StoredResponse(status: status, body: body, requestHash: claim.requestHash)
            try transaction.pipeline([PostgresBookingRepository.storing(response, claim: claim)])
            return Outcome(response: response, replayed: false, keyReused: false)
        }
    }

    /// The 202 answer.
    struct Receipt: Encodable {
        let request: RefundRequested
        let note: String
        let requestedAt: Date

        enum CodingKeys: String, CodingKey {
            case refundID = "refund_id"
            case bookingID = "booking_id"
            case amount, currency, status, reason, note
            case requestedAt = "requested_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(request.refundID, forKey: .refundID)
            try container.encode(request.bookingID, forKey: .bookingID)
            try container.encode(request.amount.amount, forKey: .amount)
            try container.encode(request.amount.currency.code, forKey: .currency)
            try container.encode("requested", forKey: .status)
            try container.encode(request.reason.rawValue, forKey: .reason)
            try container.encode(note, forKey: .note)
            try container.encode(RFC3339.string(from: requestedAt), forKey: .requestedAt)
        }
    }
}
