import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Postgres
import Redis
import SharedModel
import WebhookSignatures

extension HTTPField.Name {
    /// `X-Request-Id`: the caller's correlation id, echoed on every response.
    public static let requestID = HTTPField.Name("X-Request-Id")!
    /// `X-Operator`: who performs an admin action.
    public static let operatorName = HTTPField.Name("X-Operator")!
    /// `Idempotency-Key`.
    public static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}

extension HTTPFields {
    /// The value of the fields named `name`, as `self[name]` gives it (several fields joined with
    /// ", "), found by a loop over the fields. The subscript joins a lazy sequence through generic
    /// code even for the one field a request usually has; under the holds pair its two calls per
    /// request (`Authorization`, `Content-Length`) were 1.5% of the booking service's CPU.
    /// Not for `Cookie`, whose fields the subscript joins with "; ".
    public func value(of name: HTTPField.Name) -> String? {
        var value: String?
        for field in self where field.name == name {
            value = value.map { $0 + ", " + field.value } ?? field.value
        }
        return value
    }

    /// Sets the field `name` to `value`, as `self[name] = value` does; a name not yet present is
    /// appended directly (the subscript's setter goes through generic code, 0.2% of the hold route's
    /// CPU for each of its two calls per request).
    public mutating func set(_ name: HTTPField.Name, to value: String) {
        if contains(name) {
            self[name] = value
        } else {
            append(HTTPField(name: name, value: value))
        }
    }
}

/// Takes the correlation id from `X-Request-Id` (or creates one), puts it in the request's logger
/// metadata, and echoes it on the response.
public struct CorrelationMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.correlationID = Self.correlationID(from: request.headers.value(of: .requestID))
        context.logger[metadataKey: "correlation_id"] = .string(context.correlationID)
        var response = try await next(request, context)
        response.headers.set(.requestID, to: context.correlationID)
        return response
    }

    /// Accepts a caller's id of at most 128 printable ASCII characters; otherwise creates a UUID.
    static func correlationID(from header: String?) -> String {
        if let header, !header.isEmpty, header.count <= 128, header.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) {
            return header
        }
        return UUID.random().lowercasedString
    }
}

/// Turns every error into DESIGN.md's JSON error body with the right status. Bad input never becomes a
/// 500; an unexpected error is logged with the correlation id and answered without its details.
public struct ErrorMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try Self.apiError(for: error, logger: context.logger).response(from: request, context: context)
        }
    }

    static func apiError(for error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError:
            return APIError(error.status, code: code(for: error.status), message: error.body ?? error.status.reasonPhrase, headers: error.headers)
        case is DecodingError:
            return .badRequest("the request body is not valid JSON of the expected shape")
        case let error as PostgresError where error.isTransient || error.code == .queryCanceled:
            logger.warning("postgres unavailable", metadata: ["error": "\(error)"])
            return .dependencyUnavailable("the database is unavailable; retry later")
        case let error as RedisError where error.isTransient:
            logger.warning("redis unavailable", metadata: ["error": "\(error)"])
            return .dependencyUnavailable("redis is unavailable; retry later")
        default:
            logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return APIError(.internalServerError, code: .internalError, message: "internal error")
        }
    }

    static func code(for status: HTTPResponse.Status) -> ErrorCode {
        switch status.code {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: "method_not_allowed"
        case 409: .conflict
        case 413: .payloadTooLarge
        case 415: "unsupported_media_type"
        case 422: .unprocessable
        case 429: .rateLimited
        case 503: .dependencyUnavailable
        case 400..<500: .badRequest
        default: .internalError
        }
    }
}

/// Refuses bodies larger than the limit with 413 before reading them (by `Content-Length`), and caps
/// what `request.decode` collects for chunked bodies.
public struct BodyLimitMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers.value(of: .contentLength).flatMap(Int.init), length > limit {
            throw APIError.payloadTooLarge(limit: limit)
        }
        var context = context
        context.maxUploadSize = limit
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.payloadTooLarge(limit: limit)
        } catch is NIOTooManyBytesError {
            // A body without Content-Length (chunked) grew past the limit while a handler collected it.
            throw APIError.payloadTooLarge(limit: limit)
        }
    }
}

/// Who may call a route group.
public enum AccessLevel: Sendable {
    /// A client API key or the admin token.
    case client
    /// The admin token only; a valid client key gets 403.
    case admin
}

/// Checks `Authorization: Bearer <token>` against `API_KEYS` and `ADMIN_TOKEN` in constant time.
/// Missing or unknown credentials: 401. Valid credentials without the required access: 403.
///
/// `API_KEYS` entries are `name:key` (a client application named `name`; several keys may share a
/// name, e.g. while one is rotated out) or a bare `key` (a client of its own, named `key_` + the
/// first 16 bytes of the key's SHA-256 in hex). A name is 1-64 letters, digits, `.`, `_` or `-`,
/// starting with a letter or digit; an entry whose part before the first `:` is not such a name is a
/// bare key. Only SHA-256 digests of the keys are kept in memory.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let required: AccessLevel
    let adminDigests: [[UInt8]]
    let apiKeys: [(digest: [UInt8], client: String)]

    /// `adminTokens`: the admin token, and during a rotation the one it replaces.
    public init(required: AccessLevel, adminTokens: [String], apiKeys: [String]) {
        self.required = required
        self.adminDigests = adminTokens.map { Self.digest(Array($0.utf8)) }
        self.apiKeys = apiKeys.map { entry in
            let (name, key) = Self.split(entry)
            let digest = Self.digest(Array(key.utf8))
            return (digest, name ?? "key_" + digest.prefix(16).map { String(format: "%02x", $0) }.joined())
        }
    }

    /// `(name, key)` of a `name:key` entry, `(nil, entry)` of a bare key.
    static func split(_ entry: String) -> (name: String?, key: String) {
        guard let colon = entry.firstIndex(of: ":") else { return (nil, entry) }
        let name = entry[..<colon]
        let key = entry[entry.index(after: colon)...]
        guard isClientName(name), !key.isEmpty else { return (nil, entry) }
        return (String(name), String(key))
    }

    private static func isClientName(_ name: Substring) -> Bool {
        let bytes = Array(name.utf8)
        func allowed(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
        }
        guard (1...64).contains(bytes.count), let first = bytes.first, allowed(first) else { return false }
        return bytes.allSatisfy { allowed($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func digest(_ bytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let principal = principal(for: request.headers.value(of: .authorization)) else { throw APIError.unauthorized() }
        if required == .admin && principal != .admin { throw APIError.forbidden() }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }

    func principal(for header: String?) -> Principal? {
        guard var header else { return nil }
        // `Bearer ` in any case, then the token; read as bytes (the scheme is ASCII).
        let digest: [UInt8]? = header.withUTF8 { bytes in
            let scheme = "bearer "
            guard bytes.count > scheme.utf8.count,
                zip(bytes, scheme.utf8).allSatisfy({ byte, expected in (0x41...0x5A).contains(byte) ? byte | 0x20 == expected : byte == expected })
            else { return nil }
            return Array(SHA256.hash(data: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[scheme.utf8.count...]))))
        }
        guard let token = digest else { return nil }
        // Every admin digest is compared, so the time taken does not reveal which one matched.
        var admin = false
        for digest in adminDigests where constantTimeEquals(token, digest) { admin = true }
        if admin { return .admin }
        // Check every key so the time taken does not reveal which one matched.
        var matched: String?
        for (digest, client) in apiKeys where constantTimeEquals(token, digest) { matched = client }
        return matched.map { .client(id: $0) }
    }
}
