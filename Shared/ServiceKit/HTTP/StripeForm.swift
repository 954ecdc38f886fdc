import Foundation

/// An `application/x-www-form-urlencoded` body (or query string) the way Stripe writes and reads it:
/// `&`-separated `name=value` pairs, percent-encoded, `+` read as a space, bracket names such as
/// `metadata[booking_id]` kept as written so ``dictionary(_:)`` can collect them. The provider client
/// writes its requests with ``encoded`` and the simulator reads them with ``init(parsing:)``.
///
/// Hummingbird's `URLEncodedFormEncoder`/`Decoder` do not fit: the encoder leaves `+` unescaped in
/// values (a form reader turns it into a space) and writes fields in dictionary order, and the decoder
/// refuses a repeated name (Stripe takes the last) and loses the order a request was sent in.
public struct StripeForm: Sendable, Equatable {
    /// Why a body could not be read as a form.
    public struct Malformed: Error, Equatable {
        /// What is wrong with the form (never a value from it).
        public let reason: String
    }

    /// The pairs in the order they were sent.
    public let pairs: [(name: String, value: String)]

    /// A form of `pairs`, written in this order.
    public init(pairs: [(name: String, value: String)]) {
        self.pairs = pairs
    }

    /// `name=value&...` with every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) percent-encoded,
    /// names included (brackets become `%5B`/`%5D`, which Stripe decodes before reading them).
    public var encoded: String {
        pairs.map { "\(Self.escape($0.name))=\(Self.escape($0.value))" }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    /// Parses `text`; empty segments (`a=1&&b=2`) are skipped, a segment without `=` has an empty value.
    public init(parsing text: String) throws(Malformed) {
        var pairs: [(name: String, value: String)] = []
        for segment in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = segment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0])
            let value = parts.count > 1 ? try Self.decode(parts[1]) : ""
            guard !name.isEmpty else { throw Malformed(reason: "a form field has no name") }
            pairs.append((name, value))
        }
        self.pairs = pairs
    }

    /// Parses a request body, which must be UTF-8 once decoded.
    public init(body: [UInt8]) throws(Malformed) {
        guard let text = String(validating: body, as: UTF8.self) else { throw Malformed(reason: "the body is not UTF-8") }
        try self.init(parsing: text)
    }

    public static func == (lhs: StripeForm, rhs: StripeForm) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The last value sent for `name`, if any.
    public subscript(name: String) -> String? {
        pairs.last { $0.name == name }?.value
    }

    /// The members of a bracket family: `metadata[a]=1&metadata[b]=2` gives `["a": "1", "b": "2"]` for
    /// `"metadata"`. Later values win; nested brackets stay part of the key.
    public func dictionary(_ family: String) -> [String: String] {
        let prefix = family + "["
        var result: [String: String] = [:]
        for pair in pairs where pair.name.hasPrefix(prefix) && pair.name.hasSuffix("]") && pair.name.count > prefix.count + 1 {
            let key = String(pair.name.dropFirst(prefix.count).dropLast())
            result[key] = pair.value
        }
        return result
    }

    /// The pairs in a canonical order, so two requests with the same parameters in another order
    /// compare equal (idempotency).
    public var canonical: [String] {
        pairs.map { "\($0.name)=\($0.value)" }.sorted()
    }

    private static func decode(_ component: Substring) throws(Malformed) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(component.utf8.count)
        var iterator = component.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw Malformed(reason: "invalid percent-encoding")
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw Malformed(reason: "a decoded field is not UTF-8") }
        return decoded
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
