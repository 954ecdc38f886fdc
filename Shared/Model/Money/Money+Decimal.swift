import Foundation

extension Money {
    /// The amount as a decimal string with exactly ``Currency/minorUnitExponent`` fraction digits,
    /// without the code: 1234 EUR -> `12.34`, 1234 JPY -> `1234`, 1234 KWD -> `1.234`,
    /// -5 EUR -> `-0.05`. Exact for every Int64 amount.
    public var decimalString: String {
        let exponent = currency.minorUnitExponent
        let magnitude = amount.magnitude
        let sign = amount < 0 ? "-" : ""
        guard exponent > 0 else { return sign + String(magnitude) }
        let divisor = UInt64(currency.minorUnitsPerMajorUnit)
        let fraction = String(magnitude % divisor)
        let padding = String(repeating: "0", count: exponent - fraction.count)
        return "\(sign)\(magnitude / divisor).\(padding)\(fraction)"
    }

    /// The decimal amount followed by a space and the code: `12.34 EUR`, `1234 JPY`, `1.234 KWD`.
    /// For display and logs; on the wire money is always integer minor units.
    public var formatted: String {
        "\(decimalString) \(currency.code)"
    }

    /// Parses a decimal amount in major units (`12.34`, `-0.5`, `1234`) for `currency`.
    ///
    /// Accepts an optional leading `-`, one or more ASCII digits, and optionally a `.` followed by
    /// one to ``Currency/minorUnitExponent`` digits (fewer digits are padded: `12.3` EUR is 1230).
    /// Refuses more fraction digits than the exponent (``MoneyError/tooManyFractionDigits(allowed:found:)``,
    /// so `12.345` EUR and `12.5` JPY are errors, never rounded), anything else
    /// (``MoneyError/malformedAmount(_:)``: `+1`, `1.`, `.5`, `1,5`, `1e3`, spaces) and amounts
    /// beyond Int64 minor units (``MoneyError/overflow``).
    public init(decimal text: String, currency: Currency) throws(MoneyError) {
        let isDigit: (UInt8) -> Bool = { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        var bytes = Array(text.utf8)[...]
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes = bytes.dropFirst() }
        let integerDigits = bytes.prefix(while: isDigit)
        guard !integerDigits.isEmpty else { throw .malformedAmount(text) }
        var fractionDigits = ArraySlice<UInt8>()
        let rest = bytes.dropFirst(integerDigits.count)
        if let separator = rest.first {
            guard separator == UInt8(ascii: ".") else { throw .malformedAmount(text) }
            fractionDigits = rest.dropFirst()
            guard !fractionDigits.isEmpty, fractionDigits.allSatisfy(isDigit) else { throw .malformedAmount(text) }
        }
        let exponent = currency.minorUnitExponent
        guard fractionDigits.count <= exponent else {
            throw .tooManyFractionDigits(allowed: exponent, found: fractionDigits.count)
        }
        // Accumulate the magnitude as a negative number so Int64.min is reachable.
        var minorUnits: Int64 = 0
        let paddedFraction = Array(fractionDigits) + Array(repeating: UInt8(ascii: "0"), count: exponent - fractionDigits.count)
        for digit in Array(integerDigits) + paddedFraction {
            let (shifted, overflowA) = minorUnits.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = shifted.subtractingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { throw .overflow }
            minorUnits = next
        }
        if !negative {
            let (positive, overflow) = Int64(0).subtractingReportingOverflow(minorUnits)
            guard !overflow else { throw .overflow }
            minorUnits = positive
        }
        self.init(amount: minorUnits, currency: currency)
    }

    /// Parses the ``formatted`` form, `<decimal> <CODE>` separated by one space (`12.34 EUR`);
    /// the inverse of ``formatted``. Errors as ``init(decimal:currency:)`` and ``Currency/init(_:)``.
    public init(formatted text: String) throws(MoneyError) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformedAmount(text) }
        try self.init(decimal: String(parts[0]), currency: Currency(String(parts[1])))
    }
}
