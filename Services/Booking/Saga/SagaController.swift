import Foundation
import Hummingbird
import Messaging
import Postgres
import ServiceKit
import SharedModel

/// The saga's routes:
///
/// - `GET /v1/bookings/{id}/saga`: a booking's saga - state, deadline, version, attempts, last error -
///   and its step log (each forward step and compensation with its time and outcome), oldest first.
/// - `GET /v1/admin/sagas` (admin): sagas by `state` and/or `overdue=true`, most recently changed
///   first (`cursor`, `limit`), with every state's count and overdue count.
/// - `POST /v1/admin/sagas/{id}/resume` (admin, `X-Operator`): resumes a `compensation_failed` saga
///   (409 in any other state) and answers the saga.
struct SagaController: Sendable {
    let postgres: PostgresClient
    let operations: SagaOperations

    func addRoutes(to router: Router<ServiceRequestContext>, client: AuthenticationMiddleware, admin: AuthenticationMiddleware) {
        router.group("/v1/bookings").add(middleware: client).get("/{id}/saga") { request, context -> Response in
            let id = try Validation.pathUUID(context, resource: "booking")
            // Like the booking itself: another client's booking, or another customer's when one is named, is 404.
            let client = context.principal == .admin ? nil : context.principal?.id ?? "anonymous"
            let customer = try Validation.customerFilter(request)
            guard let saga = try await read(id, client: client, customer: customer) else { throw APIError.notFound("no booking with this id") }
            return try .json(saga)
        }
        let sagas = router.group("/v1/admin/sagas").add(middleware: admin)
        sagas.get { request, _ -> Response in
            let query = QueryFilter(request)
            let now = Date()
            let filter = SagaOperations.Filter(
                state: try query.choice("state", as: SagaState.self), overdueAt: try query.flag("overdue") == true ? now : nil)
            let limit = try query.limit()
            do {
                return try .json(try await operations.list(filter, cursor: try query.text("cursor"), limit: limit, now: now))
            } catch is InvalidCursor {
                throw APIError.invalidCursor
            }
        }
        sagas.post("/{id}/resume") { request, context -> Response in
            let id = try Validation.pathUUID(context, resource: "saga")
            let operatorName = try DeadLetterRoutes.operatorName(request)
            switch try await operations.resume(BookingID(id), operatorName: operatorName) {
            case .notFound:
                throw APIError.notFound("no saga with this id")
            case .notResumable(let state):
                throw APIError.conflict(
                    .conflict, "only a compensation_failed saga can be resumed; this one is \(state.rawValue)",
                    details: ["state": .string(state.rawValue)])
            case .resumed:
                guard let saga = try await read(id) else { throw APIError.notFound("no saga with this id") }
                return try .json(saga)
            }
        }
    }

    /// The saga of booking `id` when `client` created it (nil: anyone's, for the admin) and, when
    /// given, it belongs to `customer`.
    func read(_ id: UUID, client: String? = nil, customer: CustomerID? = nil, now: Date = Date()) async throws -> SagaView? {
        let results = try await postgres.pipeline([
            PostgresStatement(
                SagaSummary.select
                    + " WHERE s.booking_id = $1 AND ($2::text IS NULL OR b.client_id = $2) AND ($3::text IS NULL OR b.customer_id = $3)",
                [id, client, customer?.rawValue]),
            PostgresStatement("SELECT version FROM booking.sagas WHERE booking_id = $1", [id]),
            PostgresStatement(
                """
                SELECT step, kind, outcome, from_state, to_state, detail, occurred_at FROM booking.saga_steps
                WHERE booking_id = $1 ORDER BY step_id
                """,
                [id]),
        ])
        guard let row = results[0].first, let version = results[1].first else { return nil }
        return SagaView(
            summary: try SagaSummary(row, now: now), version: try version.decode(Int64.self, at: 0),
            steps: try results[2].map { step in
                SagaView.Step(
                    step: try step.decode(String.self, at: 0), kind: try step.decode(String.self, at: 1),
                    outcome: try step.decode(String.self, at: 2), fromState: try step.decode(String?.self, at: 3),
                    toState: try step.decode(String?.self, at: 4), detail: try step.decode(String?.self, at: 5),
                    occurredAt: try step.decode(Date.self, at: 6))
            })
    }
}

/// A saga as the admin list shows it: state, the booking's status, deadline (and whether it has
/// passed), attempts, last error, times. Every key is present, absent values are `null`.
struct SagaSummary: Encodable, Sendable {
    let bookingID: UUID
    let state: String
    let status: String
    let deadline: Date?
    let overdue: Bool
    let attempts: Int
    let lastError: String?
    let createdAt: Date
    let updatedAt: Date

    /// The columns ``init(_:now:)`` reads, from `booking.sagas s` joined with its booking; the caller
    /// appends its `WHERE`.
    static let select = """
        SELECT s.booking_id, s.state, b.status, s.deadline, s.attempts, s.last_error, s.created_at, s.updated_at
        FROM booking.sagas s JOIN booking.bookings b USING (booking_id)
        """

    /// A row of ``select``; `overdue` when the deadline is at or before `now`.
    init(_ row: PostgresRow, now: Date) throws {
        bookingID = try row.decode(UUID.self, at: 0)
        state = try row.decode(String.self, at: 1)
        status = try row.decode(String.self, at: 2)
        deadline = try row.decode(Date?.self, at: 3)
        overdue = deadline.map { $0 <= now } ?? false
        attempts = Int(try row.decode(Int32.self, at: 4))
        lastError = try row.decode(String?.self, at: 5)
        createdAt = try row.decode(Date.self, at: 6)
        updatedAt = try row.decode(Date.self, at: 7)
    }

    private enum CodingKeys: String, CodingKey {
        case state, status, deadline, overdue, attempts
        case bookingID = "booking_id"
        case lastError = "last_error"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookingID.uuidString.lowercased(), forKey: .bookingID)
        try container.encode(state, forKey: .state)
        try container.encode(status, forKey: .status)
        try container.encode(deadline.map { RFC3339.string(from: $0) }, forKey: .deadline)
        try container.encode(overdue, forKey: .overdue)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(RFC3339.string(from: createdAt), forKey: .createdAt)
        try container.encode(RFC3339.string(from: updatedAt), forKey: .updatedAt)
    }
}

/// A saga as `GET /v1/bookings/{id}/saga` shows it: its summary, version and step log.
struct SagaView: Encodable, Sendable {
    struct Step: Encodable, Sendable {
        let step: String
        let kind: String
        let outcome: String
        let fromState: String?
        let toState: String?
        let detail: String?
        let occurredAt: Date

        private enum CodingKeys: String, CodingKey {
            case step, kind, outcome, detail
            case fromState = "from_state"
            case toState = "to_state"
            case occurredAt = "occurred_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(step, forKey: .step)
            try container.encode(kind, forKey: .kind)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(fromState, forKey: .fromState)
            try container.encode(toState, forKey: .toState)
            try container.encode(detail, forKey: .detail)
            try container.encode(RFC3339.string(from: occurredAt), forKey: .occurredAt)
        }
    }

    let summary: SagaSummary
    let version: Int64
    let steps: [Step]

    var state: String { summary.state }
    var deadline: Date? { summary.deadline }
    var lastError: String? { summary.lastError }

    private enum CodingKeys: String, CodingKey {
        case version, steps
    }

    func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(steps, forKey: .steps)
    }
}
