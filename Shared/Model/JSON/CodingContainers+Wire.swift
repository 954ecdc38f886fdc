import Foundation

// Wire conventions shared by every event payload, applied in each type's own Codable so they hold
// whichever encoder or decoder is used:
// - an absent value is encoded as an explicit `null` (every key is always present), and decoding
//   accepts both `null` and a missing key;
// - timestamps are RFC 3339 strings;
// - money is flattened into two sibling fields, an integer `amount` and a `currency` code.

extension KeyedEncodingContainer {
    /// Encodes `value`, or an explicit `null` when it is `nil`.
    mutating func encodeNullable<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value {
            try encode(value, forKey: key)
        } else {
            try encodeNil(forKey: key)
        }
    }

    /// Encodes `date` as an RFC 3339 UTC string.
    mutating func encodeTimestamp(_ date: Date, forKey key: Key) throws {
        try encode(RFC3339.string(from: date), forKey: key)
    }

    /// Encodes `money` as an integer `amountKey` and a `currencyKey` code beside it.
    mutating func encodeMoney(_ money: Money, amountKey: Key, currencyKey: Key) throws {
        try encode(money.amount, forKey: amountKey)
        try encode(money.currency, forKey: currencyKey)
    }
}

extension KeyedDecodingContainer {
    /// Decodes an RFC 3339 string with an explicit offset.
    func decodeTimestamp(forKey key: Key) throws -> Date {
        let text = try decode(String.self, forKey: key)
        do {
            return try RFC3339.date(from: text)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: error.description)
        }
    }

    /// Decodes an integer `amountKey` with the `currencyKey` code beside it.
    func decodeMoney(amountKey: Key, currencyKey: Key) throws -> Money {
        Money(
            amount: try decode(Int64.self, forKey: amountKey),
            currency: try decode(Currency.self, forKey: currencyKey)
        )
    }
}
