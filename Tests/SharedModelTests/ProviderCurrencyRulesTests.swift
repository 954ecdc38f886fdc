import SharedModel
import Testing

@Suite("Provider currency rules (Stripe)")
struct ProviderCurrencyRulesTests {
    let stripe = ProviderCurrencyRules.stripe

    func money(_ amount: Int64, _ code: String) throws -> Money {
        Money(amount: amount, currency: try Currency(code))
    }

    @Test("minimum and maximum charges in ISO minor units; 0 is free and always accepted")
    func limits() throws {
        #expect(stripe.problem(charging: try money(0, "USD")) == nil)
        #expect(stripe.problem(charging: try money(49, "USD")) == .belowMinimum(try money(50, "USD")))
        #expect(stripe.problem(charging: try money(50, "USD")) == nil)
        #expect(stripe.problem(charging: try money(29, "GBP")) == .belowMinimum(try money(30, "GBP")))
        #expect(stripe.problem(charging: try money(49, "JPY")) == .belowMinimum(try money(50, "JPY")))
        #expect(stripe.problem(charging: try money(99_999_999, "USD")) == nil)
        #expect(stripe.problem(charging: try money(100_000_000, "EUR")) == .aboveMaximum(try money(99_999_999, "EUR")))
        #expect(stripe.problem(charging: try money(99_999_999_999, "EUR")) == .aboveMaximum(try money(99_999_999, "EUR")))
        #expect(stripe.problem(charging: try money(-1, "EUR")) != nil)
        // A currency without a published minimum is limited by the provider at the day's rate only.
        #expect(stripe.problem(charging: try money(1, "IDR")) == nil)
    }

    @Test("a transfer has no charge minimum, but the same steps and maximum")
    func transfers() throws {
        #expect(stripe.problem(transferring: try money(1, "EUR")) == nil)
        #expect(try stripe.providerAmount(forTransfer: try money(1, "EUR")) == 1)
        #expect(try stripe.providerAmount(forTransfer: try money(15, "ISK")) == 1_500)
        #expect(stripe.problem(transferring: try money(1_005, "KWD")) == .notMultiple(of: try money(10, "KWD")))
        #expect(stripe.problem(transferring: try money(100_000_000, "EUR")) == .aboveMaximum(try money(99_999_999, "EUR")))
        #expect(stripe.problem(transferring: try money(1, "XXX")) == .unsupportedCurrency(try Currency("XXX")))
    }

    @Test("non-currency codes and currencies the provider does not take are unsupported, even at 0")
    func unsupported() throws {
        for code in ["XXX", "XTS", "XAU", "XDR", "ZZZ", "IQD", "LYD"] {
            let currency = try Currency(code)
            #expect(!stripe.supports(currency), "\(code)")
            #expect(stripe.problem(charging: Money(amount: 0, currency: currency)) == .unsupportedCurrency(currency))
            #expect(stripe.problem(charging: Money(amount: 5000, currency: currency)) == .unsupportedCurrency(currency))
        }
        for code in ["USD", "EUR", "JPY", "ISK", "UGX", "KWD", "MGA"] { #expect(stripe.supports(try Currency(code))) }
    }

    @Test("ISK and UGX are two-decimal at Stripe, MGA zero-decimal, three-decimal currencies in steps of 10")
    func conversions() throws {
        #expect(try stripe.providerAmount(for: try money(1_500, "ISK")) == 150_000)
        #expect(try stripe.providerAmount(for: try money(2_000, "UGX")) == 200_000)
        #expect(stripe.maximumISOAmount(try Currency("ISK")) == 999_999)
        #expect(stripe.problem(charging: try money(1_000_000, "ISK")) == .aboveMaximum(try money(999_999, "ISK")))
        #expect(try stripe.providerAmount(for: try money(250_000, "MGA")) == 2_500)
        #expect(stripe.problem(charging: try money(250_050, "MGA")) == .notMultiple(of: try money(100, "MGA")))
        #expect(try stripe.providerAmount(for: try money(1_230, "KWD")) == 1_230)
        #expect(stripe.maximumISOAmount(try Currency("KWD")) == 99_999_990)
        #expect(stripe.problem(charging: try money(1_235, "KWD")) == .notMultiple(of: try money(10, "KWD")))
        #expect(try stripe.providerAmount(for: try money(5_000, "EUR")) == 5_000)
        #expect(throws: ProviderCurrencyRules.Problem.self) { try stripe.providerAmount(for: try money(10, "USD")) }
    }

    @Test("amounts Stripe reports read back as ISO minor units, exactly or not at all")
    func readBack() throws {
        #expect(stripe.isoAmount(providerAmount: 150_000, currency: try Currency("ISK")) == (try money(1_500, "ISK")))
        #expect(stripe.isoAmount(providerAmount: 150_050, currency: try Currency("ISK")) == nil)
        #expect(stripe.isoAmount(providerAmount: 2_500, currency: try Currency("MGA")) == (try money(250_000, "MGA")))
        #expect(stripe.isoAmount(providerAmount: .max, currency: try Currency("MGA")) == nil)
        #expect(stripe.isoAmount(providerAmount: 4_500, currency: try Currency("EUR")) == (try money(4_500, "EUR")))
        for code in ["ISK", "UGX", "MGA", "KWD", "JPY", "USD"] {
            let currency = try Currency(code)
            let maximum = Money(amount: stripe.maximumISOAmount(currency), currency: currency)
            let sent = try stripe.providerAmount(for: maximum)
            #expect(stripe.isoAmount(providerAmount: sent, currency: currency) == maximum, "\(code)")
        }
    }
}
