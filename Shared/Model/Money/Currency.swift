import Foundation

/// An ISO 4217 currency: three upper-case ASCII letters.
///
/// Guarantees: ``code`` is always three upper-case ASCII letters. Input in lower or mixed case
/// (Stripe sends `eur`) is normalised to upper case; anything else (`EURO`, `e1r`, ` EUR`) is
/// refused with ``MoneyError/invalidCurrencyCode(_:)``. Encodes as a single JSON string; decoding
/// applies the same normalisation and validation.
///
/// Whether a well-formed code is an *active* ISO 4217 currency is not checked: the model only
/// knows exponents (see ``minorUnitExponent``); the payment provider is the authority on which
/// currencies it accepts.
public struct Currency: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The upper-case three-letter code, e.g. `EUR`.
    public let code: String

    /// Validates and normalises `code` (three ASCII letters, any case).
    public init(_ code: String) throws(MoneyError) {
        let bytes = Array(code.utf8)
        guard bytes.count == 3, bytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw .invalidCurrencyCode(code)
        }
        self.code = String(decoding: bytes.map { $0 & 0xDF }, as: UTF8.self)
    }

    /// For the compile-time constants below; `code` must already be valid and upper case.
    private init(constant code: StaticString) {
        self.code = code.description
    }

    /// The code, e.g. `EUR`.
    public var description: String { code }

    /// Orders alphabetically by code.
    public static func < (lhs: Currency, rhs: Currency) -> Bool { lhs.code < rhs.code }

    /// Euro (exponent 2).
    public static let eur = Currency(constant: "EUR")
    /// US dollar (exponent 2).
    public static let usd = Currency(constant: "USD")
    /// Pound sterling (exponent 2).
    public static let gbp = Currency(constant: "GBP")
    /// Swiss franc (exponent 2).
    public static let chf = Currency(constant: "CHF")
    /// Japanese yen (exponent 0).
    public static let jpy = Currency(constant: "JPY")
    /// South Korean won (exponent 0).
    public static let krw = Currency(constant: "KRW")
    /// Kuwaiti dinar (exponent 3).
    public static let kwd = Currency(constant: "KWD")
    /// Bahraini dinar (exponent 3).
    public static let bhd = Currency(constant: "BHD")
    /// Jordanian dinar (exponent 3).
    public static let jod = Currency(constant: "JOD")
    /// Omani rial (exponent 3).
    public static let omr = Currency(constant: "OMR")
    /// Tunisian dinar (exponent 3).
    public static let tnd = Currency(constant: "TND")
}

extension Currency: Codable {
    /// Decodes a single string, normalising case; a malformed code throws `DecodingError.dataCorrupted`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Currency(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes the upper-case code as a single string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }
}
