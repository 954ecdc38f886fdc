import Foundation
import Hummingbird
import Messaging
import SharedModel

/// Reading admin list filters from a query string with DESIGN.md's statuses: a value that cannot be a
/// filter is 400 naming the parameter, never a server fault.
public struct QueryFilter: Sendable {
    let parameters: Parameters

    public init(_ request: Request) {
        parameters = request.uri.queryParameters
    }

    /// The parameter's text; `nil` when absent or empty. Postgres text cannot hold U+0000, so a value
    /// containing it is malformed.
    public func text(_ name: String) throws(APIError) -> String? {
        guard let text = parameters[Substring(name)].map(String.init), !text.isEmpty else { return nil }
        return try Self.storable(text, name)
    }

    /// An RFC 3339 timestamp with an offset.
    public func timestamp(_ name: String) throws(APIError) -> Date? {
        guard let text = try text(name) else { return nil }
        return try Self.timestamp(text, name)
    }

    /// A UUID.
    public func uuid(_ name: String) throws(APIError) -> UUID? {
        guard let text = try text(name) else { return nil }
        guard let uuid = UUID(uuidString: text) else { throw APIError.badRequest("\(name) must be a UUID") }
        return uuid
    }

    /// One of `Value`'s raw values.
    public func choice<Value: RawRepresentable & CaseIterable>(_ name: String, as _: Value.Type) throws(APIError) -> Value?
    where Value.RawValue == String {
        guard let text = try text(name) else { return nil }
        guard let value = Value(rawValue: text) else {
            throw APIError.badRequest("\(name) must be one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    /// `true` or `false`; `nil` when absent.
    public func flag(_ name: String) throws(APIError) -> Bool? {
        guard let text = try text(name) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw APIError.badRequest("\(name) must be true or false")
        }
    }

    /// The `limit` parameter within `range` (default 1...500), `defaultValue` when absent or empty; any
    /// other value is 400 naming the range. Every list endpoint reads its page size through this.
    public func limit(default defaultValue: Int = 50, in range: ClosedRange<Int> = 1...500) throws(APIError) -> Int {
        guard let text = try text("limit") else { return defaultValue }
        guard let limit = Int(text), range.contains(limit) else {
            throw APIError.badRequest("limit must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return limit
    }

    /// `cursor`: where a list this service issued continues; nil when absent or empty (the first
    /// page), 400 `invalid_cursor` for anything this service did not issue.
    public func cursor() throws(APIError) -> ListCursor? {
        guard let text = try text("cursor") else { return nil }
        guard let cursor = ListCursor(text) else { throw APIError.invalidCursor }
        return cursor
    }

    static func storable(_ text: String, _ name: String) throws(APIError) -> String {
        guard !text.unicodeScalars.contains("\u{0}") else { throw APIError.badRequest("\(name) must not contain NUL characters") }
        return text
    }

    static func timestamp(_ text: String, _ name: String) throws(APIError) -> Date {
        do {
            return try RFC3339.date(from: text)
        } catch {
            throw APIError.badRequest("\(name) must be an RFC 3339 timestamp with an offset")
        }
    }
}

extension Request {
    /// A JSON body that may be left out entirely (an empty body means every field's default); a body
    /// that is there must decode as `Body`.
    public func decodeIfPresent<Body: Decodable>(as _: Body.Type, context: ServiceRequestContext) async throws -> Body? {
        var request = self
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { return nil }
        return try JSONValueDecoder.decode(Body.self, from: Data(buffer.readableBytesView))
    }

    /// The path parameter `name`, percent-decoded (`/v1/hosts/host%20one` -> `host one`); nil when absent
    /// or not valid percent-encoding.
    public func pathParameter(_ name: String, context: ServiceRequestContext) -> String? {
        context.parameters.get(name)?.removingPercentEncoding
    }
}
