import Foundation

/// String-backed identifiers (seat, customer, host, provider event ids) chosen by clients or hosts.
///
/// Rules, applied both in code and when decoding:
/// - leading and trailing space separators (Unicode category Zs, e.g. U+0020) are trimmed, so
///   `" A-12 "` and `"A-12"` are the same seat;
/// - the result must be non-empty and at most ``maximumIdentifierLength`` Unicode scalars long
///   (the unit of Postgres `char_length`);
/// - no control character (category Cc, including tab and newline), line separator or paragraph
///   separator may appear anywhere, not even at the ends;
/// - the result is in Unicode normalization form C, so canonically equivalent spellings (`"é"`
///   as U+00E9 or as `e` + U+0301) are one identifier with one byte sequence: Swift's `==` (which
///   compares canonical equivalence), Redis keys and Postgres (which compare bytes) all agree.
extension String: IdentifierRawValue {
    /// The longest accepted string identifier, in Unicode scalars after trimming.
    public static let maximumIdentifierLength = 128

    /// Trims and validates `text` as described on this extension.
    public static func parseIdentifier(_ text: String) throws(IdentifierError.Reason) -> String {
        try validateIdentifier(text)
    }

    /// Trims and validates `value` as described on this extension.
    public static func validateIdentifier(_ value: String) throws(IdentifierError.Reason) -> String {
        if let canonical = printableASCII(value) { return canonical }
        return try validateUnicode(value)
    }

    /// The rules above in full, for any string.
    static func validateUnicode(_ value: String) throws(IdentifierError.Reason) -> String {
        let scalars = value.unicodeScalars
        for scalar in scalars {
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: throw .controlCharacter
            default: continue
            }
        }
        let isSpace: (Unicode.Scalar) -> Bool = { $0.properties.generalCategory == .spaceSeparator }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
            let last = scalars.lastIndex(where: { !isSpace($0) })
        else { throw .empty }
        let trimmed = String(scalars[first...last]).precomposedStringWithCanonicalMapping
        guard trimmed.unicodeScalars.count <= maximumIdentifierLength else {
            throw .tooLong(maximum: maximumIdentifierLength)
        }
        return trimmed
    }

    /// `value` itself when it is already valid and canonical printable ASCII (U+0020 to U+007E, not
    /// starting or ending with a space, at most the longest length): the common case, answered
    /// without the Unicode property lookups and normalization the general rules need (the hold
    /// route's profile found those at 4% of the booking service's CPU). Nil means "check it fully",
    /// not "invalid".
    static func printableASCII(_ value: String) -> String? {
        var count = 0
        for byte in value.utf8 {
            guard byte >= 0x20, byte <= 0x7E else { return nil }
            count += 1
        }
        guard count > 0, count <= maximumIdentifierLength, value.utf8.first != 0x20, value.utf8.last != 0x20 else { return nil }
        return value
    }

    /// The identifier itself.
    public var identifierText: String { self }
}
