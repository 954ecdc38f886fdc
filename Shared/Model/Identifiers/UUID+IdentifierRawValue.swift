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
    public var identifierText: String { lowercasedString }
}

extension UUID {
    /// The lower-case 8-4-4-4-12 text: `uuidString.lowercased()`, written directly. This Foundation
    /// renders `uuidString` with `snprintf` and the lowercasing copies it again; the hold route's
    /// profile found that at 1% of the booking service's CPU (every Redis key of a hold names its
    /// event).
    public var lowercasedString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var written = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[written] = UInt8(ascii: "-")
                        written += 1
                    }
                    let byte = bytes[index]
                    out[written] = Self.hexDigit(byte >> 4)
                    out[written + 1] = Self.hexDigit(byte & 0x0F)
                    written += 2
                }
                return written
            }
        }
    }

    /// The lower-case hexadecimal digit of `nibble` (0-15).
    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
    }
}
