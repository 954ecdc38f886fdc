import Foundation

extension Money {
    /// `self + other`; throws ``MoneyError/currencyMismatch(_:_:)`` or ``MoneyError/overflow``.
    public func adding(_ other: Money) throws(MoneyError) -> Money {
        guard currency == other.currency else { throw .currencyMismatch(currency, other.currency) }
        let (result, overflow) = amount.addingReportingOverflow(other.amount)
        guard !overflow else { throw .overflow }
        return Money(amount: result, currency: currency)
    }

    /// `self - other`; throws ``MoneyError/currencyMismatch(_:_:)`` or ``MoneyError/overflow``.
    public func subtracting(_ other: Money) throws(MoneyError) -> Money {
        guard currency == other.currency else { throw .currencyMismatch(currency, other.currency) }
        let (result, overflow) = amount.subtractingReportingOverflow(other.amount)
        guard !overflow else { throw .overflow }
        return Money(amount: result, currency: currency)
    }

    /// `self * factor` (e.g. a seat price times a quantity); throws ``MoneyError/overflow``.
    public func multiplied(by factor: Int64) throws(MoneyError) -> Money {
        let (result, overflow) = amount.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw .overflow }
        return Money(amount: result, currency: currency)
    }

    /// `-self`; throws ``MoneyError/overflow`` for the most negative amount.
    public func negated() throws(MoneyError) -> Money {
        try Money.zero(currency).subtracting(self)
    }

    /// `lhs + rhs`, throwing instead of trapping; use as `try a + b`.
    public static func + (lhs: Money, rhs: Money) throws(MoneyError) -> Money {
        try lhs.adding(rhs)
    }

    /// `lhs - rhs`, throwing instead of trapping; use as `try a - b`.
    public static func - (lhs: Money, rhs: Money) throws(MoneyError) -> Money {
        try lhs.subtracting(rhs)
    }

    /// The total of `values`, all of which must be in `currency`; zero when `values` is empty.
    /// Throws ``MoneyError/currencyMismatch(_:_:)`` for the first element in another currency
    /// and ``MoneyError/overflow`` if a partial sum leaves the Int64 range.
    public static func sum(_ values: some Sequence<Money>, currency: Currency) throws(MoneyError) -> Money {
        var total = Money.zero(currency)
        for value in values {
            total = try total.adding(value)
        }
        return total
    }
}
