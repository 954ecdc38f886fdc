import Foundation

extension Currency {
    /// The number of decimal digits of the currency's minor unit, per ISO 4217: 10^exponent minor
    /// units make one major unit (EUR 2: cents; JPY 0; KWD 3: fils).
    ///
    /// Every ISO 4217 currency whose exponent is not 2 is listed explicitly (0: BIF, CLP, DJF,
    /// GNF, ISK, JPY, KMF, KRW, PYG, RWF, UGX, UYI, VND, VUV, XAF, XOF, XPF; 3: BHD, IQD, JOD, KWD,
    /// LYD, OMR, TND; 4: CLF, UYW). **Any other well-formed code, known or not, has exponent 2**,
    /// the ISO default for the large majority of currencies. Note that a payment provider may use
    /// its own convention for a few currencies (Stripe treats ISK and UGX as two-decimal); mapping
    /// to a provider's convention is the provider adapter's job, not the model's.
    public var minorUnitExponent: Int {
        Self.nonDefaultExponents[code] ?? 2
    }

    /// ISO 4217 currencies whose minor-unit exponent differs from 2.
    private static let nonDefaultExponents: [String: Int] = [
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
        "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
        "CLF": 4, "UYW": 4,
    ]

    /// 10^``minorUnitExponent``: how many minor units make one major unit.
    public var minorUnitsPerMajorUnit: Int64 {
        var result: Int64 = 1
        for _ in 0..<minorUnitExponent { result *= 10 }
        return result
    }
}
