import Foundation

/// The JSON body of every HTTP error response:
/// `{"error": {"code": "seats_unavailable", "message": "...", "details": {...}}}`.
///
/// `details` is an explicit `null` when there are none; decoding accepts `null` or a missing key.
public struct ErrorBody: Hashable, Sendable, Codable {
    /// The error object inside the body.
    public struct Detail: Hashable, Sendable {
        /// The machine-readable code.
        public var code: ErrorCode
        /// A human-readable explanation; never contains secrets.
        public var message: String
        /// Structured context, e.g. `["seat_ids": ["A-1", "A-2"]]`.
        public var details: [String: JSONValue]?

        /// Creates an error object.
        public init(code: ErrorCode, message: String, details: [String: JSONValue]? = nil) {
            self.code = code
            self.message = message
            self.details = details
        }
    }

    /// The error.
    public var error: Detail

    /// Wraps an error object.
    public init(error: Detail) {
        self.error = error
    }

    /// A body with the given code, message and details.
    public init(code: ErrorCode, message: String, details: [String: JSONValue]? = nil) {
        self.error = Detail(code: code, message: message, details: details)
    }

    private enum CodingKeys: String, CodingKey {
        case error
    }
}

extension ErrorBody.Detail: Codable {
    private enum CodingKeys: String, CodingKey {
        case code
        case message
        case details
    }

    /// Decodes the error object; `details` may be `null` or absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.code = try container.decode(ErrorCode.self, forKey: .code)
        self.message = try container.decode(String.self, forKey: .message)
        self.details = try container.decodeIfPresent([String: JSONValue].self, forKey: .details)
    }

    /// Encodes the error object; absent `details` is an explicit `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encodeNullable(details, forKey: .details)
    }
}
