import Foundation

/// The machine-readable `code` of an HTTP error body. Extensible: any string is a code; the
/// well-known ones are constants, each with the HTTP status DESIGN.md pairs with it.
public struct ErrorCode: OpenStringValue {
    /// The code as written on the wire (snake_case).
    public let rawValue: String

    /// Wraps a code string.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// 400: malformed request (bad JSON, wrong types, missing required header).
    public static let badRequest: ErrorCode = "bad_request"
    /// 400: a webhook's signature is missing, malformed, stale or does not match.
    public static let invalidSignature: ErrorCode = "invalid_signature"
    /// 400: a webhook verified but its body is not a valid event of its kind (the delivery is kept).
    public static let malformedPayload: ErrorCode = "malformed_payload"
    /// 400: a list's `cursor` is not one the service issued (unparseable, or out of range).
    public static let invalidCursor: ErrorCode = "invalid_cursor"
    /// 401: missing or invalid credentials.
    public static let unauthorized: ErrorCode = "unauthorized"
    /// 403: valid credentials that are not allowed to do this.
    public static let forbidden: ErrorCode = "forbidden"
    /// 404: the resource named in the path does not exist.
    public static let notFound: ErrorCode = "not_found"
    /// 409: conflicts with the resource's current state.
    public static let conflict: ErrorCode = "conflict"
    /// 409: some requested seats are not available; `details.seat_ids` lists them.
    public static let seatsUnavailable: ErrorCode = "seats_unavailable"
    /// 413: the body is too large.
    public static let payloadTooLarge: ErrorCode = "payload_too_large"
    /// 422: well-formed but semantically invalid.
    public static let unprocessable: ErrorCode = "unprocessable"
    /// 422: field-level validation failed (empty or duplicate seats, unknown seat or event, ...).
    public static let validationFailed: ErrorCode = "validation_failed"
    /// 422: the idempotency key was already used with a different request body.
    public static let idempotencyKeyReused: ErrorCode = "idempotency_key_reused"
    /// 429: too many requests.
    public static let rateLimited: ErrorCode = "rate_limited"
    /// 503: a dependency (Postgres, Redis, the provider) is unavailable; retry later.
    public static let dependencyUnavailable: ErrorCode = "dependency_unavailable"
    /// 503: the process is shutting down (`/readyz` during the shutdown drain).
    public static let shuttingDown: ErrorCode = "shutting_down"
    /// 500: an unexpected server fault (never for bad input).
    public static let internalError: ErrorCode = "internal_error"

    /// The HTTP status DESIGN.md pairs with a well-known code; `nil` for any other code.
    public var httpStatus: Int? {
        switch self {
        case .badRequest, .invalidSignature, .malformedPayload, .invalidCursor: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .conflict, .seatsUnavailable: 409
        case .payloadTooLarge: 413
        case .unprocessable, .validationFailed, .idempotencyKeyReused: 422
        case .rateLimited: 429
        case .internalError: 500
        case .dependencyUnavailable, .shuttingDown: 503
        default: nil
        }
    }
}
