import Foundation

/// What a payment provider can charge, and how its API writes amounts.
///
/// Our model keeps ISO 4217 minor units everywhere (``Currency/minorUnitExponent``); a provider may
/// write some currencies differently on its API. Stripe (``stripe``) writes ISK and UGX with two
/// decimals (ISO: none), so its amounts are 100 times the ISO minor units, and MGA without decimals
/// (ISO: two), so ISO amounts must be whole ariary; it requires the last digit of BHD, JOD, KWD, OMR
/// and TND amounts (three decimals) to be 0, limits every amount to 8 digits of its own units, and
/// refuses charges below a minimum per currency.
///
/// Guarantees: ``problem(charging:)`` answers nil exactly when ``providerAmount(for:)`` converts the
/// amount and the provider would accept it (as far as these published rules say); 0 is never a
/// charge (free seats need none) and is always accepted; conversions never overflow or round.
public struct ProviderCurrencyRules: Sendable {
    /// Why the provider cannot charge an amount.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// The provider does not take this currency (non-currency codes such as `XXX` and `XTS` included).
        case unsupportedCurrency(Currency)
        /// A charge below the provider's minimum for its currency.
        case belowMinimum(Money)
        /// A charge above the provider's maximum for its currency.
        case aboveMaximum(Money)
        /// The provider's API cannot write the amount (e.g. KWD not a multiple of 10 fils, MGA not whole ariary).
        case notMultiple(of: Money)

        public var description: String {
            switch self {
            case .unsupportedCurrency(let currency): "the payment provider does not support \(currency)"
            case .belowMinimum(let minimum): "below the payment provider's minimum charge of \(minimum.amount) \(minimum.currency) minor units"
            case .aboveMaximum(let maximum): "above the payment provider's maximum charge of \(maximum.amount) \(maximum.currency) minor units"
            case .notMultiple(let step): "not a multiple of \(step.amount) \(step.currency) minor units, which the payment provider requires"
            }
        }
    }

    /// How one currency's ISO minor units map to the provider's units: `provider = iso * multiplier /
    /// divisor`, exact; ISO amounts must be multiples of `step` (a multiple of `divisor`).
    struct Scale: Sendable {
        var multiplier: Int64 = 1
        var divisor: Int64 = 1
        var step: Int64 = 1

        init(multiplier: Int64 = 1, divisor: Int64 = 1, step: Int64? = nil) {
            self.multiplier = multiplier
            self.divisor = divisor
            self.step = step ?? divisor
        }
    }

    /// The provider's name, e.g. `stripe`.
    public let provider: String
    private let supported: Set<String>
    private let scales: [String: Scale]
    /// Minimum charges in ISO minor units, where the provider publishes one.
    private let minimums: [String: Int64]
    /// The largest amount in the provider's own units.
    private let maximumProviderAmount: Int64

    /// Whether the provider takes `currency` at all.
    public func supports(_ currency: Currency) -> Bool {
        supported.contains(currency.code)
    }

    /// Nil when the provider can charge `amount` (or it is 0); otherwise why not.
    public func problem(charging amount: Money) -> Problem? {
        problem(moving: amount, minimum: true)
    }

    /// Nil when the provider can move `amount` at all (a transfer: the charge minimum does not apply).
    public func problem(transferring amount: Money) -> Problem? {
        problem(moving: amount, minimum: false)
    }

    private func problem(moving amount: Money, minimum checksMinimum: Bool) -> Problem? {
        guard supports(amount.currency) else { return .unsupportedCurrency(amount.currency) }
        guard amount.amount != 0 else { return nil }
        let scale = scales[amount.currency.code] ?? Scale()
        if amount.amount % scale.step != 0 {
            return .notMultiple(of: Money(amount: scale.step, currency: amount.currency))
        }
        if checksMinimum, let minimum = minimums[amount.currency.code], amount.amount < minimum {
            return .belowMinimum(Money(amount: minimum, currency: amount.currency))
        }
        let maximum = maximumISOAmount(amount.currency)
        if amount.amount < 0 || amount.amount > maximum { return .aboveMaximum(Money(amount: maximum, currency: amount.currency)) }
        return nil
    }

    /// The currencies the provider moves only in steps of more than one ISO minor unit, with their
    /// step (BHD, JOD, KWD, OMR, TND: 10; MGA: 100), sorted by code. A payout run rounds a balance down
    /// to its step and carries the rest.
    public var amountSteps: [(currency: String, step: Int64)] {
        scales.filter { $0.value.step > 1 }.map { (currency: $0.key, step: $0.value.step) }.sorted { $0.currency < $1.currency }
    }

    /// The largest amount the provider charges in `currency`, in ISO minor units.
    public func maximumISOAmount(_ currency: Currency) -> Int64 {
        let scale = scales[currency.code] ?? Scale()
        let maximum = maximumProviderAmount / scale.multiplier * scale.divisor
        return maximum - maximum % scale.step
    }

    /// `money` in the provider's units, for its API; throws when ``problem(charging:)`` would name one.
    public func providerAmount(for money: Money) throws(Problem) -> Int64 {
        if let problem = problem(charging: money) { throw problem }
        return unchecked(money)
    }

    /// `money` in the provider's units for a transfer; throws when ``problem(transferring:)`` would name one.
    public func providerAmount(forTransfer money: Money) throws(Problem) -> Int64 {
        if let problem = problem(transferring: money) { throw problem }
        return unchecked(money)
    }

    private func unchecked(_ money: Money) -> Int64 {
        let scale = scales[money.currency.code] ?? Scale()
        return money.amount / scale.divisor * scale.multiplier
    }

    /// An amount the provider reports (e.g. `amount_received`, a refund's `amount`) in ISO minor units;
    /// nil when the provider's amount has no exact ISO value or overflows.
    public func isoAmount(providerAmount: Int64, currency: Currency) -> Money? {
        let scale = scales[currency.code] ?? Scale()
        guard providerAmount % scale.multiplier == 0 else { return nil }
        let (iso, overflow) = (providerAmount / scale.multiplier).multipliedReportingOverflow(by: scale.divisor)
        return overflow ? nil : Money(amount: iso, currency: currency)
    }

    /// Stripe's published rules (docs.stripe.com/currencies): the presentment currencies, the minimum
    /// charge of the currencies it lists one for (0.50 USD, 0.30 GBP, 50 JPY, ...; for the others Stripe
    /// refuses charges below about 0.50 USD at the day's rate, which only the provider can check),
    /// amounts of at most 8 digits, ISK and UGX as two-decimal, MGA as zero-decimal, and three-decimal
    /// currencies in steps of 10.
    public static let stripe = ProviderCurrencyRules(
        provider: "stripe",
        supported: Set(
            """
            AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BWP BYN BZD CAD CDF CHF CLP CNY COP \
            CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY \
            KES KGS KHR KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK \
            NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD STD SZL THB TJS TND TOP \
            TRY TTD TWD TZS UAH UGX USD UYU UZS VND VUV WST XAF XCD XOF XPF YER ZAR ZMW
            """.split(separator: " ").map(String.init)),
        scales: [
            "ISK": Scale(multiplier: 100), "UGX": Scale(multiplier: 100), "MGA": Scale(divisor: 100),
            "BHD": Scale(step: 10), "JOD": Scale(step: 10), "KWD": Scale(step: 10), "OMR": Scale(step: 10), "TND": Scale(step: 10),
        ],
        minimums: [
            "USD": 50, "AED": 200, "AUD": 50, "BGN": 100, "BRL": 50, "CAD": 50, "CHF": 50, "CZK": 1500, "DKK": 250, "EUR": 50, "GBP": 30,
            "HKD": 400, "HUF": 17500, "INR": 50, "JPY": 50, "MXN": 1000, "MYR": 200, "NOK": 300, "NZD": 50, "PLN": 200, "RON": 200,
            "SEK": 300, "SGD": 50, "THB": 1000,
        ],
        maximumProviderAmount: 99_999_999)

    init(provider: String, supported: Set<String>, scales: [String: Scale], minimums: [String: Int64], maximumProviderAmount: Int64) {
        self.provider = provider
        self.supported = supported
        self.scales = scales
        self.minimums = minimums
        self.maximumProviderAmount = maximumProviderAmount
    }
}
