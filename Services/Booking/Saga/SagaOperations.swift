import Foundation
import Messaging
import Metrics
import Postgres
import SharedModel

/// What an operator does with sagas, from the admin API and the `saga` command alike: read one with
/// its step log, list them by state (with every state's count) and resume a `compensation_failed` one.
struct SagaOperations: Sendable {
    let postgres: PostgresClient
    /// Decides a resume (with the refund's bound, `REFUND_PENDING_BOUND`).
    let runner: SagaRunner
    var clock: WallClock = .system
    /// `saga_resumes_total`, registered at zero when the operations are made.
    let resumes = Counter(label: "saga_resumes_total")

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
    /// `refund_pending` and changes nothing. `audit`, when given, is written in the same transaction
    /// when the saga resumes (with the attempt in its details).
    func resume(_ bookingID: BookingID, operatorName: String, audit: AuditRecord? = nil) async throws -> ResumeOutcome {
        let (runner, now, clock) = (self.runner, clock.now(), self.clock)
        let run = try await postgres.withTransaction { transaction in
            let run = try runner.run(
                .resume(operatorName: operatorName), bookingID: bookingID, cause: .correlated("saga-resume-\(bookingID)"), locking: true,
                at: now, in: transaction)
            if case .resumed(let attempt, _) = run.verdict {
                try AuditLog.record(audit?.with(details: ["attempt": .integer(Int64(attempt))]), clock: clock, in: transaction)
            }
            return run
        }
        switch run.verdict {
        case .resumed(let attempt, let key):
            resumes.increment()
            return .resumed(attempt: attempt, idempotencyKey: key)
        case .notResumable(let state):
            return .notResumable(state)
        default:
            return .notFound
        }
    }

    // MARK: Reading one

    /// The saga of booking `id` when `client` created it (nil: anyone's, for the admin) and, when
    /// given, it belongs to `customer`; with its version and step log, oldest step first.
    func saga(_ id: BookingID, client: String? = nil, customer: CustomerID? = nil) async throws -> SagaView? {
        let now = clock.now()
        var summary = Self.selectSummary
        summary.append(" WHERE s.booking_id = \(id.uuid)")
        if let client { summary.append(" AND b.client_id = \(client)") }
        if let customer { summary.append(" AND b.customer_id = \(customer.rawValue)") }
        let results = try await postgres.pipeline([
            summary,
            "SELECT version FROM booking.sagas WHERE booking_id = \(id.uuid)",
            """
            SELECT step, kind, outcome, from_state, to_state, detail, occurred_at FROM booking.saga_steps
            WHERE booking_id = \(id.uuid) ORDER BY step_id
            """,
        ])
        guard let row = results[0].first, let version = results[1].first else { return nil }
        return SagaView(
            summary: try Self.summary(row, now: now), version: try version.decode(Int64.self, at: 0),
            steps: try results[2].map { step in
                SagaView.Step(
                    step: try step.decode(String.self, at: 0), kind: try step.decode(String.self, at: 1),
                    outcome: try step.decode(String.self, at: 2), fromState: try step.decode(String?.self, at: 3),
                    toState: try step.decode(String?.self, at: 4), detail: try step.decode(String?.self, at: 5),
                    occurredAt: try step.decode(Date.self, at: 6))
            })
    }

    // MARK: Listing and counting

    struct Filter: Sendable {
        var state: SagaState?
        /// Only sagas past their deadline (payment due + grace, or the refund's bound).
        var overdue = false
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
    func list(_ filter: Filter, cursor: ListCursor?, limit: Int) async throws -> Page {
        let now = clock.now()
        var query = NewestFirstQuery(select: Self.selectSummary, timeColumn: "s.updated_at", idColumn: "s.booking_id")
        query.equal("s.state", filter.state?.rawValue)
        query.notAfter("s.deadline", filter.overdue ? now : nil)
        let page = try await query.page(
            on: postgres, after: cursor, limit: limit, decode: { try Self.summary($0, now: now) },
            position: { ListCursor(createdAt: $0.updatedAt, id: $0.bookingID) })
        let counts = try await counts(at: now)
        return Page(
            sagas: page.rows, counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }), nextCursor: page.nextCursor)
    }

    /// Every state's count (zero included) and how many are past their deadline at `now`.
    func counts(at now: Date? = nil) async throws -> [SagaState: Count] {
        let now = now ?? clock.now()
        var counts = Dictionary(uniqueKeysWithValues: SagaState.allCases.map { ($0, Count(total: 0, overdue: 0)) })
        let rows = try await postgres.query("SELECT state, count(*), count(*) FILTER (WHERE deadline <= \(now)) FROM booking.sagas GROUP BY state")
        for row in rows {
            guard let state = SagaState(rawValue: try row.decode(String.self, at: 0)) else { continue }
            counts[state] = Count(total: try row.decode(Int.self, at: 1), overdue: try row.decode(Int.self, at: 2))
        }
        return counts
    }

    /// The columns ``summary(_:now:)`` reads, from `booking.sagas s` joined with its booking.
    private static let selectSummary: PostgresStatement = """
        SELECT s.booking_id, s.state, b.status, s.deadline, s.attempts, s.last_error, s.created_at, s.updated_at
        FROM booking.sagas s JOIN booking.bookings b USING (booking_id)
        """

    /// A row of ``selectSummary``; `overdue` when the deadline is at or before `now`.
    private static func summary(_ row: PostgresRow, now: Date) throws -> SagaSummary {
        let deadline = try row.decode(Date?.self, at: 3)
        return SagaSummary(
            bookingID: try row.decode(UUID.self, at: 0), state: try row.decode(String.self, at: 1), status: try row.decode(String.self, at: 2),
            deadline: deadline, overdue: deadline.map { $0 <= now } ?? false, attempts: Int(try row.decode(Int32.self, at: 4)),
            lastError: try row.decode(String?.self, at: 5), createdAt: try row.decode(Date.self, at: 6), updatedAt: try row.decode(Date.self, at: 7))
    }
}
