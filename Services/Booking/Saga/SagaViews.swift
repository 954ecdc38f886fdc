import Foundation
import SharedModel

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

    private enum CodingKeys: String, CodingKey {
        case state, status, deadline, overdue, attempts
        case bookingID = "booking_id"
        case lastError = "last_error"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookingID.lowercasedString, forKey: .bookingID)
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
