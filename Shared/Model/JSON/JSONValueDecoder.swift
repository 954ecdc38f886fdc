import Foundation

/// Decodes a `Decodable` value from a ``JSONValue`` tree (or from JSON text read by
/// ``JSONValue/init(fastParsing:)``), giving what `JSONDecoder.platform` gives, without Foundation's
/// decoder in the common case: request bodies and every consumed event's payload are decoded this
/// way, and `JSONDecoder` was 3-5% of the booking service's CPU (docs/performance.md).
///
/// Only a success of the direct path is trusted. Whenever it fails, or meets what it does not decide
/// itself - a number with a fraction or an exponent, a floating-point, `Data`, `URL` or `Decimal`
/// value - the same input is decoded by `JSONDecoder.platform` and its value or its error is the
/// answer, even where the type's own `init(from:)` swallowed the direct path's refusal. So errors are
/// always `JSONDecoder`'s, and a value differs from `JSONDecoder`'s only if the direct path decodes
/// something `JSONDecoder` would not, or differently, which the tests look for on random documents.
public enum JSONValueDecoder {
    /// `type` decoded from JSON text (`JSONDecoder.platform.decode(type, from: bytes)`).
    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: Data) throws -> Value {
        if let json = JSONValue(fastParsing: bytes), let value = directly(type, from: json) { return value }
        return try JSONDecoder.platform.decode(type, from: bytes)
    }

    /// `type` decoded from `json` (what `JSONDecoder.platform` decodes from the bytes
    /// `JSONEncoder.platform` writes for `json`).
    public static func decode<Value: Decodable>(_ type: Value.Type, from json: JSONValue) throws -> Value {
        if let value = directly(type, from: json) { return value }
        return try JSONDecoder.platform.decode(type, from: JSONEncoder.platform.encode(json))
    }

    /// The value the direct path decodes, or nil when it failed or needs `JSONDecoder`.
    static func directly<Value: Decodable>(_ type: Value.Type, from json: JSONValue) -> Value? {
        let state = DecodingState()
        guard let value = try? DirectDecoding.decode(type, from: json, codingPath: [], state: state), !state.needsFallback else { return nil }
        return value
    }
}

/// Whether the direct path met something it leaves to `JSONDecoder` (set even when the refusal was
/// caught by the type being decoded).
private final class DecodingState {
    var needsFallback = false

    /// Records the refusal and returns the error that carries it up.
    func fallback(_ codingPath: [any CodingKey]) -> DecodingError {
        needsFallback = true
        return DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "left to JSONDecoder"))
    }
}

/// The direct path's unboxing of values, shared by the containers.
private enum DirectDecoding {
    static func decode<Value: Decodable>(_ type: Value.Type, from json: JSONValue, codingPath: [any CodingKey], state: DecodingState) throws -> Value
    {
        // The commonest plain types directly, and those `JSONDecoder` decodes its own way (Date by
        // the platform's strategy); comparing the type first spares every other value the casts.
        if type == JSONValue.self, let value = json as? Value {
            return value
        } else if type == String.self, case .string(let string) = json, let value = string as? Value {
            return value
        } else if type == String?.self, let string = optionalString(json), let value = string as? Value {
            return value
        } else if type == [String].self, case .array(let elements) = json {
            // Arrays of strings (seat ids) are the commonest array in the services' bodies; decoded
            // generically each element costs a decoder and a container.
            let strings = try elements.enumerated().map { index, element in
                try string(element, codingPath: codingPath + [DecodingKey(intValue: index)])
            }
            if let value = strings as? Value { return value }
        } else if type == Date.self {
            let text = try string(json, codingPath: codingPath)
            guard let date = try? RFC3339.date(from: text), let value = date as? Value else {
                throw state.fallback(codingPath)
            }
            return value
        } else if type == Data.self || type == URL.self || type == Decimal.self {
            throw state.fallback(codingPath)
        }
        return try Value(from: TreeDecoder(json: json, codingPath: codingPath, state: state))
    }

    // A scalar's coding path is built only for its error.

    static func mismatch(_ type: Any.Type, _ json: JSONValue, codingPath: [any CodingKey]) -> DecodingError {
        DecodingError.typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(type), found \(json)"))
    }

    static func string(_ json: JSONValue, codingPath: @autoclosure () -> [any CodingKey]) throws -> String {
        guard case .string(let value) = json else { throw mismatch(String.self, json, codingPath: codingPath()) }
        return value
    }

    /// `json` as an optional string: nil for null; nil, wrapped, for anything else (not a string).
    private static func optionalString(_ json: JSONValue) -> String?? {
        switch json {
        case .null: .some(nil)
        case .string(let string): .some(string)
        default: nil
        }
    }

    static func bool(_ json: JSONValue, codingPath: @autoclosure () -> [any CodingKey]) throws -> Bool {
        guard case .bool(let value) = json else { throw mismatch(Bool.self, json, codingPath: codingPath()) }
        return value
    }

    static func integer<Integer: FixedWidthInteger>(
        _ json: JSONValue, codingPath: @autoclosure () -> [any CodingKey], state: DecodingState
    ) throws -> Integer {
        switch json {
        case .integer(let value):
            guard let exact = Integer(exactly: value) else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath(), debugDescription: "\(value) does not fit \(Integer.self)"))
            }
            return exact
        case .number:
            throw state.fallback(codingPath())
        default:
            throw mismatch(Integer.self, json, codingPath: codingPath())
        }
    }
}

/// An array element's or a super decoder's coding key.
private struct DecodingKey: CodingKey {
    private let name: String?
    let intValue: Int?

    /// `Index <n>` for an element, as `JSONDecoder` names it (written only when asked for).
    var stringValue: String { name ?? "Index \(intValue ?? 0)" }

    init(intValue: Int) {
        self.name = nil
        self.intValue = intValue
    }

    init(stringValue: String) {
        self.name = stringValue
        self.intValue = nil
    }
}

private struct TreeDecoder: Decoder {
    let json: JSONValue
    let codingPath: [any CodingKey]
    let state: DecodingState
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = json else { throw DirectDecoding.mismatch([String: JSONValue].self, json, codingPath: codingPath) }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath, state: state))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = json else { throw DirectDecoding.mismatch([JSONValue].self, json, codingPath: codingPath) }
        return UnkeyedContainer(elements: elements, codingPath: codingPath, state: state)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleContainer(json: json, codingPath: codingPath, state: state)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]
    let state: DecodingState

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let json = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for \(key.stringValue)"))
        }
        return json
    }

    private func integer<Integer: FixedWidthInteger>(_ key: Key) throws -> Integer {
        try DirectDecoding.integer(try member(key), codingPath: codingPath + [key], state: state)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try DirectDecoding.bool(try member(key), codingPath: codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try DirectDecoding.string(try member(key), codingPath: codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { throw state.fallback(codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw state.fallback(codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(key) }

    func decode<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Value {
        try DirectDecoding.decode(type, from: try member(key), codingPath: codingPath + [key], state: state)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TreeDecoder(json: try member(key), codingPath: codingPath + [key], state: state).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TreeDecoder(json: try member(key), codingPath: codingPath + [key], state: state).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        let key = DecodingKey(stringValue: "super")
        return TreeDecoder(json: members[key.stringValue] ?? .null, codingPath: codingPath + [key], state: state)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        TreeDecoder(json: members[key.stringValue] ?? .null, codingPath: codingPath + [key], state: state)
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    let state: DecodingState
    private(set) var currentIndex = 0

    init(elements: [JSONValue], codingPath: [any CodingKey], state: DecodingState) {
        self.elements = elements
        self.codingPath = codingPath
        self.state = state
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    /// The current element's coding path.
    private var path: [any CodingKey] { codingPath + [DecodingKey(intValue: currentIndex)] }

    /// The next element, given to `decode` with its coding path (built when asked for); the index
    /// moves on only when `decode` succeeds.
    private mutating func next<Value>(_ decode: (JSONValue, () -> [any CodingKey]) throws -> Value) throws -> Value {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Value.self, .init(codingPath: path, debugDescription: "the array has no more elements"))
        }
        let (base, index) = (codingPath, currentIndex)
        let value = try decode(elements[index]) { base + [DecodingKey(intValue: index)] }
        currentIndex += 1
        return value
    }

    private mutating func integer<Integer: FixedWidthInteger>() throws -> Integer {
        let state = state
        return try next { json, path in try DirectDecoding.integer(json, codingPath: path(), state: state) }
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            let path = codingPath + [DecodingKey(intValue: currentIndex)]
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: path, debugDescription: "the array has no more elements"))
        }
        guard elements[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next { json, path in try DirectDecoding.bool(json, codingPath: path()) } }
    mutating func decode(_ type: String.Type) throws -> String { try next { json, path in try DirectDecoding.string(json, codingPath: path()) } }
    mutating func decode(_ type: Double.Type) throws -> Double { throw state.fallback(codingPath) }
    mutating func decode(_ type: Float.Type) throws -> Float { throw state.fallback(codingPath) }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer() }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }

    mutating func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        let state = state
        return try next { json, path in try DirectDecoding.decode(type, from: json, codingPath: path(), state: state) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let state = state
        return try next { json, path in try TreeDecoder(json: json, codingPath: path(), state: state).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let state = state
        return try next { json, path in try TreeDecoder(json: json, codingPath: path(), state: state).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder {
        let state = state
        return try next { json, path in TreeDecoder(json: json, codingPath: path(), state: state) }
    }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let json: JSONValue
    let codingPath: [any CodingKey]
    let state: DecodingState

    private func integer<Integer: FixedWidthInteger>() throws -> Integer {
        try DirectDecoding.integer(json, codingPath: codingPath, state: state)
    }

    func decodeNil() -> Bool { json == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try DirectDecoding.bool(json, codingPath: codingPath) }
    func decode(_ type: String.Type) throws -> String { try DirectDecoding.string(json, codingPath: codingPath) }
    func decode(_ type: Double.Type) throws -> Double { throw state.fallback(codingPath) }
    func decode(_ type: Float.Type) throws -> Float { throw state.fallback(codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try integer() }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }

    func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        try DirectDecoding.decode(type, from: json, codingPath: codingPath, state: state)
    }
}
