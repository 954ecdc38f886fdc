import Foundation

/// UUID-backed identifiers: every UUID is valid; the wire form is the lower-case 8-4-4-4-12 text.
extension UUID: IdentifierRawValue {
    /// Parses a UUID in 8-4-4-4-12 hexadecimal form (either case).
    public static func parseIdentifier(_ text: String) throws(IdentifierError.Reason) -> UUID {
        guard let uuid = UUID(uuidString: text) else { throw .malformedUUID }
        return uuid
    }

    /// Every UUID is a valid identifier.
    public static func validateIdentifier(_ value: UUID) throws(IdentifierError.Reason) -> UUID {
        value
    }

    /// The lower-case 8-4-4-4-12 text, as RFC 9562 recommends for output.
    public var identifierText: String {
        uuidString.lowercased()
    }
}
