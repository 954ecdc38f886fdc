import Foundation

/// Why a money operation or a currency/amount parse was refused. Money code never traps: every
/// failure is one of these values.
public enum MoneyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The two operands (or an element of a sum and the sum's currency) differ in currency.
    case currencyMismatch(Currency, Currency)
    /// The result does not fit in a signed 64-bit count of minor units.
    case overflow
    /// Not an ISO 4217-shaped code (three ASCII letters). Holds the rejected text.
    case invalidCurrencyCode(String)
    /// Not a decimal amount of the form `-?digits(.digits)?`. Holds the rejected text.
    case malformedAmount(String)
    /// The decimal amount has more fraction digits than the currency's minor-unit exponent.
    case tooManyFractionDigits(allowed: Int, found: Int)

    /// A one-line explanation suitable for a 422 message.
    public var description: String {
        switch self {
        case .currencyMismatch(let lhs, let rhs): "currency mismatch: \(lhs) and \(rhs)"
        case .overflow: "amount out of range"
        case .invalidCurrencyCode(let code): "invalid ISO 4217 currency code \"\(code)\""
        case .malformedAmount(let text): "malformed decimal amount \"\(text)\""
        case .tooManyFractionDigits(let allowed, let found):
            "amount has \(found) fraction digits but the currency allows \(allowed)"
        }
    }
}
