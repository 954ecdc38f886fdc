import Foundation

// Direct JSON reading and writing of `JSONValue`, for the hot paths (every outbox append, every
// consumed event). Going through `Codable` costs several times more: a `JSONValue` decodes by
// trying each type in turn, and `JSONEncoder` boxes every value. The output is byte for byte what
// `JSONEncoder.platform` writes (sorted keys, slashes unescaped), which the tests check.

extension JSONValue {
    /// Parses JSON text (RFC 8259, UTF-8). Returns `nil` when the text is not JSON, or holds something
    /// this fast path does not keep exactly or does not decide: a number with a fraction or an exponent
    /// or an integer beyond Int64, an object with a key twice, nesting deeper than 512, a byte-order
    /// mark. Decode those with `JSONDecoder`, which holds such numbers as `Decimal` and has the final
    /// word on the rest.
    ///
    /// Reads the bytes directly into `JSONValue`s: going through `JSONSerialization` built a Foundation
    /// object graph first and then converted it, which cost several times the parse itself.
    public init?(fastParsing bytes: Data) {
        let value = bytes.withUnsafeBytes { raw -> JSONValue? in
            var reader = FastJSONReader(raw.bindMemory(to: UInt8.self))
            return reader.document()
        }
        guard let value else { return nil }
        self = value
    }

    /// Appends this value's JSON to `output`: object keys sorted by their UTF-8 bytes, strings
    /// escaped as `JSONEncoder` escapes them.
    public func writeJSON(to output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): output.append(contentsOf: String(value).utf8)
        case .number(let value): output.append(contentsOf: value.description.utf8)
        case .string(let value): JSONValue.writeString(value, to: &output)
        case .array(let values):
            output.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                value.writeJSON(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                member.value.writeJSON(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// The positions of `keys` in the order an object writes them: by their UTF-8 bytes (as
    /// `JSONEncoder`'s sorted keys), a repeated key in its positions' order. Also each key's first
    /// eight bytes as a big-endian number (zero-padded), which sort as the keys do where they differ:
    /// most keys are told apart by them, without comparing the strings.
    static func writtenOrder(of keys: [String]) -> (order: [Int], prefixes: [UInt64]) {
        let prefixes = keys.map { key in
            var prefix: UInt64 = 0
            var shift: UInt64 = 56
            for byte in key.utf8.prefix(8) {
                prefix |= UInt64(byte) << shift
                shift &-= 8
            }
            return prefix
        }
        let order = keys.indices.sorted { left, right in
            if prefixes[left] != prefixes[right] { return prefixes[left] < prefixes[right] }
            return keyOrder(keys[left], keys[right]) ?? (left < right)
        }
        return (order, prefixes)
    }

    /// Whether key `left` sorts before `right` in written objects (by their UTF-8 bytes, as
    /// `JSONEncoder`'s sorted keys); `nil` when they are the same key. One `memcmp` where the strings
    /// are contiguous (always, for native strings).
    private static func keyOrder(_ left: String, _ right: String) -> Bool? {
        let compared: Int?? = left.utf8.withContiguousStorageIfAvailable { leftBytes in
            right.utf8.withContiguousStorageIfAvailable { rightBytes in
                let common = min(leftBytes.count, rightBytes.count)
                guard common > 0, let leftStart = leftBytes.baseAddress, let rightStart = rightBytes.baseAddress else {
                    return leftBytes.count - rightBytes.count
                }
                let order = Int(memcmp(leftStart, rightStart, common))
                return order != 0 ? order : leftBytes.count - rightBytes.count
            }
        }
        if case .some(.some(let order)) = compared { return order == 0 ? nil : order < 0 }
        if left.utf8.elementsEqual(right.utf8) { return nil }
        return left.utf8.lexicographicallyPrecedes(right.utf8)
    }

    /// Appends `text` as a JSON string. The runs of bytes that need no escape (almost always the whole
    /// string) are copied in one piece.
    public static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
                case 0x08: output.append(contentsOf: #"\b"#.utf8)
                case 0x0C: output.append(contentsOf: #"\f"#.utf8)
                case 0x0A: output.append(contentsOf: #"\n"#.utf8)
                case 0x0D: output.append(contentsOf: #"\r"#.utf8)
                case 0x09: output.append(contentsOf: #"\t"#.utf8)
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    output.append(contentsOf: #"\u00"#.utf8)
                    output.append(hex[Int(byte >> 4)])
                    output.append(hex[Int(byte & 0x0F)])
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// A single pass over UTF-8 JSON text that declines (returns nil) rather than guesses: whatever it
/// accepts, `JSONDecoder` reads as the same value.
private struct FastJSONReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    /// Deeper documents are left to the decoder (and cannot exhaust the stack here).
    private static let maximumDepth = 512

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The one value the text holds, with nothing but whitespace around it.
    mutating func document() -> JSONValue? {
        skipWhitespace()
        guard let value = value(depth: 0) else { return nil }
        skipWhitespace()
        guard index == bytes.count else { return nil }
        return value
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) -> JSONValue? {
        guard let byte = current else { return nil }
        switch byte {
        case UInt8(ascii: "{"): return object(depth: depth + 1)
        case UInt8(ascii: "["): return array(depth: depth + 1)
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return integer()
        default: return nil
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return nil }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return nil }
        index += count
        return value
    }

    private mutating func object(depth: Int) -> JSONValue? {
        var members: [String: JSONValue] = [:]
        let read = elements(closedBy: UInt8(ascii: "}"), depth: depth) { reader in
            guard reader.current == UInt8(ascii: "\""), let key = reader.string() else { return false }
            reader.skipWhitespace()
            guard reader.current == UInt8(ascii: ":") else { return false }
            reader.index += 1
            reader.skipWhitespace()
            guard let member = reader.value(depth: depth) else { return false }
            // A key twice: which one counts is the decoder's call.
            return members.updateValue(member, forKey: key) == nil
        }
        return read ? .object(members) : nil
    }

    private mutating func array(depth: Int) -> JSONValue? {
        var values: [JSONValue] = []
        let read = elements(closedBy: UInt8(ascii: "]"), depth: depth) { reader in
            guard let element = reader.value(depth: depth) else { return false }
            values.append(element)
            return true
        }
        return read ? .array(values) : nil
    }

    /// Reads the comma-separated elements of an object or array whose opening bracket is current, each
    /// with `element`, through the closing bracket; false when the text is not that.
    private mutating func elements(closedBy closing: UInt8, depth: Int, _ element: (inout FastJSONReader) -> Bool) -> Bool {
        guard depth <= Self.maximumDepth else { return false }
        index += 1
        skipWhitespace()
        if current == closing {
            index += 1
            return true
        }
        while true {
            guard element(&self) else { return false }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case closing:
                index += 1
                return true
            default:
                return false
            }
        }
    }

    /// An integer within Int64, without a fraction or an exponent (RFC 8259: no leading zeros, no `+`).
    private mutating func integer() -> JSONValue? {
        let negative = current == UInt8(ascii: "-")
        if negative { index += 1 }
        guard let first = current, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
        // Accumulated as a negative number, so Int64.min fits.
        var value: Int64 = 0
        var digits = 0
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            let (shifted, overflowShift) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowAdd) = shifted.subtractingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflowShift, !overflowAdd else { return nil }
            value = next
            digits += 1
            index += 1
        }
        if first == UInt8(ascii: "0") && digits > 1 { return nil }
        switch current {
        case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
        default: break
        }
        if negative { return .integer(value) }
        guard value != Int64.min else { return nil }
        return .integer(-value)
    }

    /// A string starting at the current quote: valid UTF-8, no raw control characters, the JSON escapes
    /// (a `\u` surrogate pair is one scalar; a lone surrogate is declined).
    private mutating func string() -> String? {
        index += 1
        let start = index
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let run = UnsafeBufferPointer(rebasing: bytes[start..<index])
                // ASCII is valid UTF-8, and `String(decoding:)` skips the generic validation that
                // `String(validating:)` goes through (0.4% of the hold route's CPU).
                let text = ascii ? String(decoding: run, as: UTF8.self) : String(validating: run, as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\\") else { return nil }
        // Escapes: the text so far, then byte by byte.
        var utf8 = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(validating: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard let escaped = current else { return nil }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escaped)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    utf8.append(contentsOf: scalar.utf8)
                default: return nil
                }
            case 0..<0x20:
                return nil
            default:
                utf8.append(byte)
                index += 1
            }
        }
        return nil
    }

    /// The scalar of a `\uXXXX` escape whose `u` was just read, with its low surrogate when it is a
    /// high one.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let unit = hexUnit() else { return nil }
        switch unit {
        case 0xD800...0xDBFF:
            guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { return nil }
            index += 2
            guard let low = hexUnit(), (0xDC00...0xDFFF).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
        case 0xDC00...0xDFFF:
            return nil
        default:
            return Unicode.Scalar(unit)
        }
    }

    private mutating func hexUnit() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var unit: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            unit = unit << 4 | UInt32(digit)
            index += 1
        }
        return unit
    }
}
