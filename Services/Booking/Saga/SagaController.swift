import Foundation
import Hummingbird
import Postgres
import ServiceKit
import SharedModel

/// `GET /v1/bookings/{id}/saga`: a booking's saga - state, deadline, version, attempts, last error -
/// and its step log (each forward step and compensation with its time and outcome), oldest first.
struct SagaController: Sendable {
    let postgres: PostgresClient

    func addRoutes(to router: Router<ServiceRequestContext>, client: AuthenticationMiddleware) {
        router.group("/v1/bookings").add(middleware: client).get("/{id}/saga") { _, context -> Response in
            let id = try Validation.pathUUID(context, resource: "booking")
            guard let saga = try await read(id) else { throw APIError.notFound("no booking with this id") }
            return try .json(saga)
        }
    }

    func read(_ id: UUID) async throws -> SagaView? {
        let results = try await postgres.pipeline([
            PostgresStatement(
                "SELECT state, version, deadline, attempts, last_error, created_at, updated_at FROM booking.sagas WHERE booking_id = $1", [id]),
            PostgresStatement(
                """
                SELECT step, kind, outcome, from_state, to_state, detail, occurred_at FROM booking.saga_steps
                WHERE booking_id = $1 ORDER BY step_id
                """,
                [id]),
        ])
        guard let row = results[0].first else { return nil }
        return SagaView(
            bookingID: id, state: try row.decode(String.self, at: 0), version: try row.decode(Int64.self, at: 1),
            deadline: try row.decode(Date?.self, at: 2), attempts: Int(try row.decode(Int32.self, at: 3)),
            lastError: try row.decode(String?.self, at: 4), createdAt: try row.decode(Date.self, at: 5),
            updatedAt: try row.decode(Date.self, at: 6),
            steps: try results[1].map { step in
                SagaView.Step(
                    step: try step.decode(String.self, at: 0), kind: try step.decode(String.self, at: 1),
                    outcome: try step.decode(String.self, at: 2), fromState: try step.decode(String?.self, at: 3),
                    toState: try step.decode(String?.self, at: 4), detail: try step.decode(String?.self, at: 5),
                    occurredAt: try step.decode(Date.self, at: 6))
            })
    }
}

/// A saga as the API shows it; every key is present, absent values are `null`.
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

    let bookingID: UUID
    let state: String
    let version: Int64
    let deadline: Date?
    let attempts: Int
    let lastError: String?
    let createdAt: Date
    let updatedAt: Date
    let steps: [Step]

    private enum CodingKeys: String, CodingKey {
        case state, version, deadline, attempts, steps
        case bookingID = "booking_id"
        case lastError = "last_error"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookingID.uuidString.lowercased(), forKey: .bookingID)
        try container.encode(state, forKey: .state)
        try container.encode(version, forKey: .version)
        try container.encode(deadline.map { RFC3339.string(from: $0) }, forKey: .deadline)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(RFC3339.string(from: createdAt), forKey: .createdAt)
        try container.encode(RFC3339.string(from: updatedAt), forKey: .updatedAt)
        try container.encode(steps, forKey: .steps)
    }
}
