import Foundation

/// The phantom type that gives an ``Identifier`` its meaning (booking, seat, customer, ...).
///
/// A tag is never instantiated; it only names the identifier in error messages and picks the
/// representation (`UUID` or a validated `String`). Two identifiers with different tags are
/// different types, so a `SeatID` can never be passed where a `CustomerID` is expected.
public protocol IdentifierTag: Sendable {
    /// How the identifier is stored and sent on the wire.
    associatedtype RawValue: IdentifierRawValue

    /// The wire name of the identifier (for example `seat_id`), used in error messages.
    static var name: String { get }

    /// Whether new identifiers of this kind must reveal nothing, not even when they were made: then
    /// ``Identifier/init()`` makes random (version 4) UUIDs, otherwise time-ordered (version 7) ones,
    /// which keep the indexes they are keys of compact and cheap to write. Only for UUID identifiers.
    static var isSecret: Bool { get }
}

extension IdentifierTag {
    /// Identifiers are not secret unless their tag says so.
    public static var isSecret: Bool { false }
}

/// A representation an ``Identifier`` can wrap: it parses and validates its wire text, renders
/// a canonical wire text, and orders values deterministically.
public protocol IdentifierRawValue: Hashable, Sendable, Comparable {
    /// Parses and validates wire text, producing the canonical value or the reason it is invalid.
    static func parseIdentifier(_ text: String) throws(IdentifierError.Reason) -> Self

    /// Checks a value built in code; returns the canonical form or the reason it is invalid.
    static func validateIdentifier(_ value: Self) throws(IdentifierError.Reason) -> Self

    /// The canonical wire text; ``parseIdentifier(_:)`` of it returns an equal value.
    var identifierText: String { get }
}
