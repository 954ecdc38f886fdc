import Foundation

/// A typed identifier: a validated raw value (a `UUID` or a `String`) tagged with what it
/// identifies, so identifiers of different kinds cannot be confused.
///
/// Guarantees:
/// - an instance always holds a valid, canonical raw value (see ``IdentifierRawValue``);
/// - it encodes as a single JSON string (UUIDs in lower case) and decoding an invalid value
///   throws `DecodingError.dataCorrupted`;
/// - equality, hashing and ordering are those of the canonical raw value.
public struct Identifier<Tag: IdentifierTag>: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The canonical, validated raw value.
    public let rawValue: Tag.RawValue

    /// Wraps `rawValue` after validating (and, for strings, trimming) it.
    public init(validating rawValue: Tag.RawValue) throws(IdentifierError) {
        do {
            self.rawValue = try Tag.RawValue.validateIdentifier(rawValue)
        } catch {
            throw IdentifierError(identifier: Tag.name, reason: error)
        }
    }

    /// Parses the identifier's wire text (a UUID string or a client-chosen string).
    public init(parsing text: String) throws(IdentifierError) {
        do {
            self.rawValue = try Tag.RawValue.parseIdentifier(text)
        } catch {
            throw IdentifierError(identifier: Tag.name, reason: error)
        }
    }

    /// The canonical wire text: lower-case UUID, or the trimmed string.
    public var description: String { rawValue.identifierText }

    /// Orders by raw value: UUIDs by their bytes, strings by Unicode scalar order.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension Identifier: Codable {
    /// Decodes a single string; an invalid one throws `DecodingError.dataCorrupted`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Self(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes the canonical wire text as a single string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Identifier: CodingKeyRepresentable {
    /// The identifier's wire text as a dictionary key, so `[SeatID: X]` encodes as a JSON object.
    public var codingKey: any CodingKey { IdentifierCodingKey(stringValue: description) }

    /// Parses a dictionary key; `nil` when the key is not a valid identifier.
    public init?<T: CodingKey>(codingKey: T) {
        guard let parsed = try? Self(parsing: codingKey.stringValue) else { return nil }
        self = parsed
    }
}

/// The coding key used when an ``Identifier`` is a dictionary key.
private struct IdentifierCodingKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Identifier where Tag.RawValue == UUID {
    /// Wraps an existing UUID (every UUID is valid).
    public init(_ uuid: UUID) {
        self.rawValue = uuid
    }

    /// A new identifier: time-ordered (version 7, 74 random bits after the creation time in
    /// milliseconds), or random (version 4, 122 random bits) when the tag ``IdentifierTag/isSecret``.
    /// Both are unguessable; only a secret one hides when it was made.
    public init() {
        self.init(Tag.isSecret ? UUID.random() : UUID.timeOrdered())
    }

    /// The wrapped UUID.
    public var uuid: UUID { rawValue }
}

extension Identifier where Tag.RawValue == String {
    /// Validates and wraps a client-chosen string; see ``Swift/String/validateIdentifier(_:)`` for the rules.
    public init(_ string: String) throws(IdentifierError) {
        try self.init(validating: string)
    }
}
