import Foundation

/// Why a value was refused as an identifier.
///
/// The rejected text itself is deliberately not stored: identifiers come from clients and may be
/// arbitrarily long or contain control characters, so errors never echo them into logs.
public struct IdentifierError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The specific rule a candidate identifier broke.
    public enum Reason: Error, Hashable, Sendable {
        /// Empty, or only white space.
        case empty
        /// Longer than the maximum number of Unicode scalars (after trimming).
        case tooLong(maximum: Int)
        /// Contains a control, line-separator or paragraph-separator character.
        case controlCharacter
        /// Not a UUID in its canonical 8-4-4-4-12 hexadecimal form.
        case malformedUUID
    }

    /// The wire name of the identifier that was refused (for example `seat_id`).
    public let identifier: String
    /// The rule the candidate broke.
    public let reason: Reason

    /// Creates an error for the identifier named `identifier`.
    public init(identifier: String, reason: Reason) {
        self.identifier = identifier
        self.reason = reason
    }

    /// A one-line explanation suitable for a 400/422 message; never contains the rejected value.
    public var description: String {
        switch reason {
        case .empty: "\(identifier) must not be empty"
        case .tooLong(let maximum): "\(identifier) must be at most \(maximum) characters"
        case .controlCharacter: "\(identifier) must not contain control characters"
        case .malformedUUID: "\(identifier) must be a UUID"
        }
    }
}
