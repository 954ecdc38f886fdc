import Foundation

/// Encodes an `Encodable` value straight into a ``JSONValue`` tree, as `JSONEncoder.platform`
/// followed by parsing its output would give, without the bytes in between: an event's envelope is
/// built per delivery and per state change, and encoding to bytes and parsing them back was half of
/// that cost (scripts/profile webhooks). Dates are RFC 3339 strings (``RFC3339``), `Data` base64, `URL`
/// its absolute string; floating-point values are numbers (non-finite ones throw); an unsigned
/// integer over `Int64.max` throws, as ``JSONValue`` holds integers as `Int64`.
public enum JSONValueEncoder {
    /// `value` as a ``JSONValue``.
    public static func encode<Value: Encodable>(_ value: Value) throws -> JSONValue {
        let node = Node()
        try Node.encode(value, into: node, codingPath: [])
        return node.resolved
    }

    /// `value` as JSON text: the bytes `JSONEncoder.platform` writes for it (sorted keys, slashes
    /// unescaped; tested equal), in 60-80% of its time. Response bodies use it. Floating-point
    /// values are the exception: they are written from their shortest decimal form without an
    /// exponent (`1e-07` as `0.0000001`), the same number; no body of the services holds one.
    public static func jsonBytes<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        try encode(value).writeJSON(to: &output)
        return output
    }
}

/// One value under construction: containers write into it by reference. An object's members and an
/// array's elements are stored properties mutated in place: keeping them inside an enum's payload
/// made every added member copy the whole dictionary (the payload is still referenced while it is
/// changed).
private final class Node {
    enum Kind {
        case empty
        case value
        case object
        case array
    }

    var kind = Kind.empty
    var value = JSONValue.null
    var members: [String: Node] = [:]
    var elements: [Node] = []

    var resolved: JSONValue {
        switch kind {
        case .empty: .object([:])
        case .value: value
        case .object: .object(members.mapValues(\.resolved))
        case .array: .array(elements.map(\.resolved))
        }
    }

    /// Makes this node the plain value `value`.
    func set(_ value: JSONValue) {
        kind = .value
        self.value = value
    }

    /// The member node for `key`, created (as empty) when missing; the node becomes an object.
    func member(_ key: String) -> Node {
        makeObject()
        if let node = members[key] { return node }
        let node = Node()
        members[key] = node
        return node
    }

    func makeObject() {
        if kind != .object {
            kind = .object
            members = [:]
        }
    }

    func makeArray() {
        if kind != .array {
            kind = .array
            elements = []
        }
    }

    func append() -> Node {
        makeArray()
        let node = Node()
        elements.append(node)
        return node
    }

    /// Encodes `value` into `node`, with the platform's special cases.
    static func encode<Value: Encodable>(_ value: Value, into node: Node, codingPath: [any CodingKey]) throws {
        // Comparing the type first spares the common values (strings, identifiers, structs) five
        // dynamic casts each.
        let type = Value.self
        if type == JSONValue.self, let json = value as? JSONValue {
            node.set(json)
        } else if type == Date.self, let date = value as? Date {
            node.set(.string(RFC3339.string(from: date)))
        } else if type == Data.self, let data = value as? Data {
            node.set(.string(data.base64EncodedString()))
        } else if type == URL.self, let url = value as? URL {
            node.set(.string(url.absoluteString))
        } else if type == Decimal.self, let decimal = value as? Decimal {
            node.set(.number(decimal))
        } else {
            try value.encode(to: TreeEncoder(node: node, codingPath: codingPath))
        }
    }

    static func integer<Integer: BinaryInteger>(_ value: Integer, codingPath: [any CodingKey]) throws -> JSONValue {
        guard let exact = Int64(exactly: value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) does not fit a 64-bit signed integer"))
        }
        return .integer(exact)
    }

    static func floating<Floating: BinaryFloatingPoint & LosslessStringConvertible>(
        _ value: Floating, codingPath: [any CodingKey]
    ) throws -> JSONValue {
        guard value.isFinite, let decimal = Decimal(string: String(value)) else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is not a finite JSON number"))
        }
        return .number(decimal)
    }
}

private struct TreeEncoder: Encoder {
    let node: Node
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.makeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.makeArray()
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(node: node, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [any CodingKey]

    private func set(_ value: JSONValue, _ key: Key) { node.member(key.stringValue).set(value) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(try Node.floating(value, codingPath: codingPath + [key]), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(try Node.floating(value, codingPath: codingPath + [key]), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.integer(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(try Node.integer(value, codingPath: codingPath + [key]), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(try Node.integer(value, codingPath: codingPath + [key]), key) }

    mutating func encode<Value: Encodable>(_ value: Value, forKey key: Key) throws {
        try Node.encode(value, into: node.member(key.stringValue), codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = node.member(key.stringValue)
        child.makeObject()
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = node.member(key.stringValue)
        child.makeArray()
        return UnkeyedContainer(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(node: node.member("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { TreeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]
    var count: Int {
        node.kind == .array ? node.elements.count : 0
    }

    private func add(_ value: JSONValue) { node.append().set(value) }

    mutating func encodeNil() throws { add(.null) }
    mutating func encode(_ value: Bool) throws { add(.bool(value)) }
    mutating func encode(_ value: String) throws { add(.string(value)) }
    mutating func encode(_ value: Double) throws { add(try Node.floating(value, codingPath: codingPath)) }
    mutating func encode(_ value: Float) throws { add(try Node.floating(value, codingPath: codingPath)) }
    mutating func encode(_ value: Int) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int8) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int16) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int32) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: Int64) throws { add(.integer(value)) }
    mutating func encode(_ value: UInt) throws { add(try Node.integer(value, codingPath: codingPath)) }
    mutating func encode(_ value: UInt8) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { add(.integer(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { add(try Node.integer(value, codingPath: codingPath)) }

    mutating func encode<Value: Encodable>(_ value: Value) throws {
        try Node.encode(value, into: node.append(), codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = node.append()
        child.makeObject()
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = node.append()
        child.makeArray()
        return UnkeyedContainer(node: child, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(node: node.append(), codingPath: codingPath) }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]

    private func set(_ value: JSONValue) { node.set(value) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(try Node.floating(value, codingPath: codingPath)) }
    mutating func encode(_ value: Float) throws { set(try Node.floating(value, codingPath: codingPath)) }
    mutating func encode(_ value: Int) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int16) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int32) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: Int64) throws { set(.integer(value)) }
    mutating func encode(_ value: UInt) throws { set(try Node.integer(value, codingPath: codingPath)) }
    mutating func encode(_ value: UInt8) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { set(.integer(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { set(try Node.integer(value, codingPath: codingPath)) }

    mutating func encode<Value: Encodable>(_ value: Value) throws {
        try Node.encode(value, into: node, codingPath: codingPath)
    }
}
