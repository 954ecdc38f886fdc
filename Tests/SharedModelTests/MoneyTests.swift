import Foundation
import SharedModel
import Testing

@Suite("Currency")
struct CurrencyTests {
    @Test("lower and mixed case codes are normalised to upper case")
    func normalises() throws {
        #expect(try Currency("eur").code == "EUR")
        #expect(try Currency("Jpy") == .jpy)
        #expect(try Currency("KWD") == .kwd)
    }

    @Test("malformed codes are refused", arguments: ["EURO", "e1r", "EU", "", " EUR", "EUR ", "€UR", "ÉUR", "12a"])
    func rejectsMalformed(code: String) {
        #expect(throws: MoneyError.invalidCurrencyCode(code)) { try Currency(code) }
    }

    @Test(
        "minor-unit exponents",
        arguments: [
            ("JPY", 0), ("KRW", 0), ("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2),
            ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("CLF", 4),
        ])
    func exponents(code: String, exponent: Int) throws {
        #expect(try Currency(code).minorUnitExponent == exponent)
    }

    @Test("an unknown but well-formed code defaults to exponent 2")
    func unknownDefaultsToTwo() throws {
        #expect(try Currency("XYZ").minorUnitExponent == 2)
    }

    @Test("decoding normalises case and refuses malformed codes")
    func codable() throws {
        #expect(try JSONDecoder.platform.decode(Currency.self, from: Data(#""usd""#.utf8)) == .usd)
        #expect(String(decoding: try JSONEncoder.platform.encode(Currency.chf), as: UTF8.self) == #""CHF""#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(Currency.self, from: Data(#""EURO""#.utf8))
        }
    }
}

@Suite("Money")
struct MoneyTests {
    let eur = Currency.eur

    @Test("adding and subtracting in one currency")
    func arithmetic() throws {
        let a = Money(amount: 1_250, currency: eur)
        let b = Money(amount: 99, currency: eur)
        #expect(try a + b == Money(amount: 1_349, currency: eur))
        #expect(try b - a == Money(amount: -1_151, currency: eur))
        #expect(try (b - a).isNegative)
        #expect(try a.multiplied(by: 3) == Money(amount: 3_750, currency: eur))
    }

    @Test("mixing currencies throws currencyMismatch, never converts or ignores")
    func mixedCurrencies() {
        let eur = Money(amount: 100, currency: .eur)
        let usd = Money(amount: 100, currency: .usd)
        #expect(throws: MoneyError.currencyMismatch(.eur, .usd)) { try eur + usd }
        #expect(throws: MoneyError.currencyMismatch(.usd, .eur)) { try usd - eur }
        #expect(throws: MoneyError.currencyMismatch(.eur, .usd)) {
            try Money.sum([eur, eur, usd], currency: .eur)
        }
        #expect(throws: MoneyError.currencyMismatch(.usd, .eur)) {
            try Money.sum([eur], currency: .usd)
        }
    }

    @Test("overflow throws instead of trapping")
    func overflow() {
        let max = Money(amount: .max, currency: .jpy)
        let min = Money(amount: .min, currency: .jpy)
        let one = Money(amount: 1, currency: .jpy)
        #expect(throws: MoneyError.overflow) { try max + one }
        #expect(throws: MoneyError.overflow) { try min - one }
        #expect(throws: MoneyError.overflow) { try max.multiplied(by: 2) }
        #expect(throws: MoneyError.overflow) { try min.negated() }
        #expect(throws: MoneyError.overflow) { try Money.sum([max, one], currency: .jpy) }
    }

    @Test("sum of nothing is zero in the given currency")
    func emptySum() throws {
        #expect(try Money.sum([], currency: .kwd) == .zero(.kwd))
        #expect(try Money.sum([Money(amount: 5, currency: .kwd), Money(amount: 7, currency: .kwd)], currency: .kwd).amount == 12)
    }

    @Test(
        "formatting uses the currency's exponent",
        arguments: [
            (Int64(1234), "EUR", "12.34 EUR"),
            (1234, "JPY", "1234 JPY"),
            (1234, "KWD", "1.234 KWD"),
            (5, "EUR", "0.05 EUR"),
            (-5, "EUR", "-0.05 EUR"),
            (0, "USD", "0.00 USD"),
            (-1234, "JPY", "-1234 JPY"),
            (7, "KWD", "0.007 KWD"),
            (Int64.min, "EUR", "-92233720368547758.08 EUR"),
            (Int64.max, "EUR", "92233720368547758.07 EUR"),
        ])
    func formatting(amount: Int64, code: String, expected: String) throws {
        let money = Money(amount: amount, currency: try Currency(code))
        #expect(money.formatted == expected)
        #expect(try Money(formatted: expected) == money)
    }

    @Test(
        "parsing decimal amounts",
        arguments: [
            ("12.34", "EUR", Int64(1234)),
            ("12.3", "EUR", 1230),
            ("12", "EUR", 1200),
            ("0.05", "EUR", 5),
            ("-0.05", "EUR", -5),
            ("1234", "JPY", 1234),
            ("1.234", "KWD", 1234),
            ("1.2", "KWD", 1200),
            ("007", "JPY", 7),
            ("-92233720368547758.08", "EUR", .min),
            ("92233720368547758.07", "EUR", .max),
        ])
    func parsing(text: String, code: String, minorUnits: Int64) throws {
        #expect(try Money(decimal: text, currency: Currency(code)) == Money(amount: minorUnits, currency: Currency(code)))
    }

    @Test("parsing refuses more fraction digits than the exponent")
    func tooManyFractionDigits() {
        #expect(throws: MoneyError.tooManyFractionDigits(allowed: 2, found: 3)) { try Money(decimal: "12.345", currency: .eur) }
        #expect(throws: MoneyError.tooManyFractionDigits(allowed: 0, found: 1)) { try Money(decimal: "12.5", currency: .jpy) }
        #expect(throws: MoneyError.tooManyFractionDigits(allowed: 0, found: 1)) { try Money(decimal: "12.0", currency: .jpy) }
        #expect(throws: MoneyError.tooManyFractionDigits(allowed: 3, found: 4)) { try Money(decimal: "1.2345", currency: .kwd) }
    }

    @Test("parsing refuses malformed amounts", arguments: ["", "-", "+1", "1.", ".5", "1,50", "1e3", " 1", "1 ", "1.2.3", "--1", "0x10", "１"])
    func malformed(text: String) {
        #expect(throws: MoneyError.malformedAmount(text)) { try Money(decimal: text, currency: .eur) }
    }

    @Test("parsing refuses amounts beyond Int64 minor units")
    func parseOverflow() {
        #expect(throws: MoneyError.overflow) { try Money(decimal: "92233720368547758.08", currency: .eur) }
        #expect(throws: MoneyError.overflow) { try Money(decimal: "9223372036854775808", currency: .jpy) }
        #expect(throws: MoneyError.overflow) { try Money(decimal: "99999999999999999999999", currency: .jpy) }
    }

    @Test("parsing the formatted form needs a valid code")
    func parseFormatted() throws {
        #expect(try Money(formatted: "12.34 eur") == Money(amount: 1234, currency: .eur))
        #expect(throws: MoneyError.invalidCurrencyCode("EURO")) { try Money(formatted: "12.34 EURO") }
        #expect(throws: MoneyError.malformedAmount("12.34")) { try Money(formatted: "12.34") }
        #expect(throws: MoneyError.malformedAmount("12.34  EUR")) { try Money(formatted: "12.34  EUR") }
    }

    @Test("standalone Money encodes as an integer amount beside the currency")
    func codable() throws {
        let money = Money(amount: 1234, currency: .kwd)
        let json = String(decoding: try JSONEncoder.platform.encode(money), as: UTF8.self)
        #expect(json == #"{"amount":1234,"currency":"KWD"}"#)
        #expect(try JSONDecoder.platform.decode(Money.self, from: Data(json.utf8)) == money)
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(Money.self, from: Data(#"{"amount":12.34,"currency":"EUR"}"#.utf8))
        }
    }
}
