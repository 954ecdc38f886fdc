import Foundation
import HTTPTypes
import Hummingbird
import SharedModel

/// An error answered to the client with DESIGN.md's JSON body and the right status:
/// `{"error": {"code": "...", "message": "...", "details": {...}}}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var body: ErrorBody
    /// Extra response headers (e.g. `Retry-After`, `WWW-Authenticate`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: ErrorCode, message: String, details: [String: JSONValue]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.body = ErrorBody(code: code, message: message, details: details)
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers.set(.contentType, to: "application/json; charset=utf-8")
        let data =
            (try? JSONEncoder.platform.encode(body))
            ?? Data(#"{"error":{"code":"internal_error","message":"error body could not be encoded","details":null}}"#.utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: Common errors

    public static func badRequest(_ message: String, details: [String: JSONValue]? = nil) -> APIError {
        APIError(.badRequest, code: .badRequest, message: message, details: details)
    }

    /// 400 `invalid_cursor`: a list's `cursor` that this API did not return.
    public static let invalidCursor = APIError(.badRequest, code: .invalidCursor, message: "cursor is not one this API returned")

    public static func unauthorized(_ message: String = "missing or invalid credentials") -> APIError {
        APIError(.unauthorized, code: .unauthorized, message: message, headers: [.wwwAuthenticate: "Bearer"])
    }

    public static func forbidden(_ message: String = "these credentials may not use this route") -> APIError {
        APIError(.forbidden, code: .forbidden, message: message)
    }

    public static func notFound(_ message: String) -> APIError {
        APIError(.notFound, code: .notFound, message: message)
    }

    public static func conflict(_ code: ErrorCode = .conflict, _ message: String, details: [String: JSONValue]? = nil) -> APIError {
        APIError(.conflict, code: code, message: message, details: details)
    }

    public static func unprocessable(_ code: ErrorCode = .unprocessable, _ message: String, details: [String: JSONValue]? = nil) -> APIError {
        APIError(.unprocessableContent, code: code, message: message, details: details)
    }

    public static func payloadTooLarge(limit: Int) -> APIError {
        APIError(
            .contentTooLarge, code: .payloadTooLarge, message: "the request body exceeds \(limit) bytes",
            details: ["limit_bytes": .integer(Int64(limit))])
    }

    public static func dependencyUnavailable(_ message: String, details: [String: JSONValue]? = nil) -> APIError {
        APIError(.serviceUnavailable, code: .dependencyUnavailable, message: message, details: details, headers: [.retryAfter: "1"])
    }
}

extension Response {
    /// A JSON response encoded with the platform's encoder (snake_case keys are the types' own).
    public static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        try json(bytes: JSONValueEncoder.jsonBytes(value), status: status, headers: headers)
    }

    /// A response carrying JSON bytes that are already encoded (e.g. a stored idempotent response).
    public static func json(bytes: [UInt8], status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers.set(.contentType, to: "application/json; charset=utf-8")
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
