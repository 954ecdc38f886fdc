import Foundation

/// A string-backed value whose set is open: any string decodes, the well-known values are
/// constants. It travels as a single JSON string and is written as a literal in code.
public protocol OpenStringValue: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
where RawValue == String, StringLiteralType == String {
    /// Wraps a string.
    init(rawValue: String)
}

extension OpenStringValue {
    /// A literal value.
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    /// Decodes a single string.
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    /// Encodes a single string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The string itself.
    public var description: String { rawValue }
}
