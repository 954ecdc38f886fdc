import Foundation
import Messaging
import Metrics
import Postgres
import SharedModel

/// What an operator does with sagas, from the admin API and the `saga` command alike: list them by
/// state (with every state's count) and resume a `compensation_failed` one.
struct SagaOperations: Sendable {
    let postgres: PostgresClient
    /// The bound of the refund a resume asks for (`REFUND_PENDING_BOUND`).
    let refundPendingBound: Duration

    // MARK: Resume

    enum ResumeOutcome: Sendable, Equatable {
        /// Moved to `refund_pending`; `refund.requested` (with `lookup_existing`) is in the outbox.
        case resumed(attempt: Int, idempotencyKey: String)
        case notFound
        /// Only `compensation_failed` can be resumed; this is the state found.
        case notResumable(SagaState)
    }

    /// Resumes the refund of a `compensation_failed` saga: `refund_pending` again (one more attempt,
    /// a new deadline) and a `refund.requested` that tells the provider worker to look for an existing
    /// refund of the payment first and to refund under a new key (`refund-cancel-<id>-resume-<n>`) only
    /// when none succeeded or is pending. One transaction; a second resume of the same saga finds it
    /// `refund_pending` and changes nothing.
    func resume(_ bookingID: BookingID, operatorName: String, now: Date = Date()) async throws -> ResumeOutcome {
        let bound = refundPendingBound
        let outcome: ResumeOutcome = try await postgres.withTransaction { transaction in
            guard try !transaction.query("SELECT 1 FROM booking.sagas WHERE booking_id = $1 FOR UPDATE", [bookingID.uuid]).isEmpty,
                let current = try SagaLedger(transaction: transaction, now: now).load(bookingID)
            else { return .notFound }
            guard current.state == .compensationFailed else { return .notResumable(current.state) }
            let attempt = current.attempts + 1
            let key = "refund-cancel-\(bookingID)-resume-\(attempt)"
            try SagaLedger(transaction: transaction, now: now).requestRefund(
                current, reason: .operatorResume, idempotencyKey: key, lookupExisting: true, bound: bound, step: "saga_resumed",
                detail:
                    "resumed by \(operatorName) (attempt \(attempt)): an existing refund at the provider is used, else a new one under key \(key)",
                countsAttempt: true, correlationID: "saga-resume-\(bookingID)")
            return .resumed(attempt: attempt, idempotencyKey: key)
        }
        if case .resumed = outcome { Counter(label: "saga_resumes_total").increment() }
        return outcome
    }

    // MARK: Listing and counting

    struct Filter: Sendable {
        var state: SagaState?
        /// Only sagas whose deadline (payment due + grace, or the refund's bound) is at or before this.
        var overdueAt: Date?
    }

    /// How many sagas are in a state, and how many of them are past their deadline.
    struct Count: Encodable, Sendable, Equatable {
        var total: Int
        var overdue: Int
    }

    /// A page of the list (most recently changed first) with the counts of every state.
    struct Page: Encodable, Sendable {
        let sagas: [SagaSummary]
        let counts: [String: Count]
        let nextCursor: String?

        private enum CodingKeys: String, CodingKey {
            case sagas, counts
            case nextCursor = "next_cursor"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(sagas, forKey: .sagas)
            try container.encode(counts, forKey: .counts)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    /// Sagas matching `filter`, most recently changed first, after `cursor`; with every state's counts.
    func list(_ filter: Filter, cursor: String?, limit: Int, now: Date = Date()) async throws -> Page {
        var position: ListCursor?
        if let cursor {
            guard let parsed = ListCursor(cursor) else { throw InvalidCursor() }
            position = parsed
        }
        var query = NewestFirstQuery(select: SagaSummary.select, timeColumn: "s.updated_at", idColumn: "s.booking_id")
        query.equal("s.state", filter.state?.rawValue)
        query.notAfter("s.deadline", filter.overdueAt)
        let page = try await query.page(
            on: postgres, after: position, limit: limit, decode: { try SagaSummary($0, now: now) },
            position: { ListCursor(createdAt: $0.updatedAt, id: $0.bookingID) })
        let counts = try await counts(at: now)
        return Page(
            sagas: page.rows, counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }), nextCursor: page.nextCursor)
    }

    /// Every state's count (zero included) and how many are past their deadline at `now`.
    func counts(at now: Date = Date()) async throws -> [SagaState: Count] {
        var counts = Dictionary(uniqueKeysWithValues: SagaState.allCases.map { ($0, Count(total: 0, overdue: 0)) })
        let rows = try await postgres.query(
            "SELECT state, count(*), count(*) FILTER (WHERE deadline <= $1) FROM booking.sagas GROUP BY state", [now])
        for row in rows {
            guard let state = SagaState(rawValue: try row.decode(String.self, at: 0)) else { continue }
            counts[state] = Count(total: try row.decode(Int.self, at: 1), overdue: try row.decode(Int.self, at: 2))
        }
        return counts
    }
}
