import Foundation

/// An amount of money: a signed integer count of the currency's minor units (cents for EUR, yen
/// for JPY, fils for KWD) and its ``Currency``. Never floating point.
///
/// Guarantees: arithmetic never mixes currencies and never traps - mismatches and overflow throw
/// ``MoneyError``. As a standalone JSON value it encodes as `{"amount": <int>, "currency": "EUR"}`;
/// inside event data the two fields are flattened into the surrounding object (see DESIGN.md,
/// "Money on the wire").
public struct Money: Hashable, Sendable, CustomStringConvertible {
    /// The amount in minor units of ``currency``.
    public let amount: Int64
    /// The currency of ``amount``.
    public let currency: Currency

    /// An amount of `amount` minor units of `currency`.
    public init(amount: Int64, currency: Currency) {
        self.amount = amount
        self.currency = currency
    }

    /// Zero in `currency`.
    public static func zero(_ currency: Currency) -> Money {
        Money(amount: 0, currency: currency)
    }

    /// Whether the amount is below zero.
    public var isNegative: Bool { amount < 0 }
    /// Whether the amount is zero.
    public var isZero: Bool { amount == 0 }
    /// Whether the amount is above zero.
    public var isPositive: Bool { amount > 0 }

    /// The amount with its code, as ``formatted``: `12.34 EUR`.
    public var description: String { formatted }
}

extension Money: Codable {
    private enum CodingKeys: String, CodingKey {
        case amount
        case currency
    }

    /// Decodes `{"amount": <integer minor units>, "currency": "<code>"}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            amount: try container.decode(Int64.self, forKey: .amount),
            currency: try container.decode(Currency.self, forKey: .currency)
        )
    }

    /// Encodes `{"amount": <integer minor units>, "currency": "<code>"}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(amount, forKey: .amount)
        try container.encode(currency, forKey: .currency)
    }
}
