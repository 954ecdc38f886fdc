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
        let node = Node(parent: nil, key: nil)
        try Node.encode(value, into: node)
        return node.resolved
    }

    /// `value` as JSON text: the bytes `JSONEncoder.platform` writes for it (sorted keys, slashes
    /// unescaped; tested equal), in about half its time for an object of twenty members
    /// (`platform-bench json`). Response bodies use it. Floating-point
    /// values are the exception: they are written from their shortest decimal form without an
    /// exponent (`1e-07` as `0.0000001`), the same number; no body of the services holds one.
    public static func jsonBytes<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let node = Node(parent: nil, key: nil)
        try Node.encode(value, into: node)
        var output: [UInt8] = []
        output.reserveCapacity(512)
        node.write(to: &output)
        return output
    }
}

/// One value under construction: containers write into it by reference.
///
/// An object's members are kept in the order they were encoded, as two arrays (keys and slots); a
/// member that is a plain value (a string, number, identifier or date) is stored as such, not as a
/// node of its own. A repeated key is resolved when the object is read (the last value wins, as in
/// `JSONEncoder`), so encoding a member costs no lookup; only a nested container looks for an existing
/// member of its key, to continue it. The coding path is not built as the encoder descends (an array
/// per value): a node knows its parent and its key, and the path is assembled when someone asks,
/// which in practice is an error message.
private final class Node {
    enum Kind {
        case empty
        case value
        case object
        case array
    }

    /// A member's or element's value.
    enum Slot {
        case value(JSONValue)
        case node(Node)

        var resolved: JSONValue {
            switch self {
            case .value(let value): value
            case .node(let node): node.resolved
            }
        }

        func write(to output: inout [UInt8]) {
            switch self {
            case .value(let value): value.writeJSON(to: &output)
            case .node(let node): node.write(to: &output)
            }
        }
    }

    var kind = Kind.empty
    var value = JSONValue.null
    /// An object's member keys, parallel to `slots`; empty for an array.
    var keys: [String] = []
    /// An object's member values or an array's elements.
    var slots: [Slot] = []
    private unowned let parent: Node?
    private let key: (any CodingKey)?

    init(parent: Node?, key: (any CodingKey)?) {
        self.parent = parent
        self.key = key
    }

    /// The keys from the root to this node.
    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var node: Node? = self
        while let current = node, let key = current.key {
            path.append(key)
            node = current.parent
        }
        return path.reversed()
    }

    var resolved: JSONValue {
        switch kind {
        case .empty: .object([:])
        case .value: value
        case .object: .object(Dictionary(zip(keys, slots.lazy.map(\.resolved)), uniquingKeysWith: { _, last in last }))
        case .array: .array(slots.map(\.resolved))
        }
    }

    /// Appends this value's JSON: what ``resolved`` would write, without building it.
    func write(to output: inout [UInt8]) {
        switch kind {
        case .empty:
            output.append(contentsOf: "{}".utf8)
        case .value:
            value.writeJSON(to: &output)
        case .array:
            output.append(UInt8(ascii: "["))
            for (index, slot) in slots.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                slot.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object:
            // Sorted by key, a repeated key in the order it was encoded; each key's last value is written.
            let (order, prefixes) = JSONValue.writtenOrder(of: keys)
            output.append(UInt8(ascii: "{"))
            var first = true
            for (position, index) in order.enumerated() {
                if position + 1 < order.count {
                    let next = order[position + 1]
                    if prefixes[next] == prefixes[index], keys[next] == keys[index] { continue }
                }
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                JSONValue.writeString(keys[index], to: &output)
                output.append(UInt8(ascii: ":"))
                slots[index].write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Makes this node the plain value `value`.
    func set(_ value: JSONValue) {
        kind = .value
        self.value = value
    }

    func makeObject() {
        if kind != .object {
            kind = .object
            keys = []
            slots = []
        }
    }

    func makeArray() {
        if kind != .array {
            kind = .array
            keys = []
            slots = []
        }
    }

    /// Adds member `key` (an object's; a repeated key's last value is the one read).
    func addMember(_ key: String, _ slot: Slot) {
        makeObject()
        keys.append(key)
        slots.append(slot)
    }

    /// The node of member `key` for a nested container or encoder: the member's node when it already
    /// has one (a second container for the same key continues it, as in `JSONEncoder`), else a new one.
    func memberNode(_ key: any CodingKey) -> Node {
        makeObject()
        let name = key.stringValue
        if let index = keys.lastIndex(of: name), case .node(let node) = slots[index] { return node }
        let node = Node(parent: self, key: key)
        addMember(name, .node(node))
        return node
    }

    /// A new element node for a nested container or encoder.
    func elementNode() -> Node {
        makeArray()
        let node = Node(parent: self, key: IndexKey(intValue: slots.count))
        slots.append(.node(node))
        return node
    }

    /// `value`'s slot: a plain value when it is one (the platform's special types, or a value that
    /// encodes itself through a single-value container), else its node.
    static func slot<Value: Encodable>(for value: Value, parent: Node, key: any CodingKey) throws -> Slot {
        if let special = special(value) { return .value(special) }
        let node = Node(parent: parent, key: key)
        try value.encode(to: TreeEncoder(node: node))
        return node.kind == .value ? .value(node.value) : .node(node)
    }

    /// Encodes `value` into `node`, with the platform's special cases.
    static func encode<Value: Encodable>(_ value: Value, into node: Node) throws {
        if let special = special(value) {
            node.set(special)
        } else {
            try value.encode(to: TreeEncoder(node: node))
        }
    }

    /// The types the platform encodes its own way, and the most common plain values, without an
    /// encoder. Comparing the type first spares every other value the dynamic casts.
    private static func special<Value: Encodable>(_ value: Value) -> JSONValue? {
        let type = Value.self
        if type == String.self, let string = value as? String {
            return .string(string)
        } else if type == String?.self, let string = value as? String? {
            return string.map(JSONValue.string) ?? .null
        } else if type == JSONValue.self, let json = value as? JSONValue {
            return json
        } else if type == Date.self, let date = value as? Date {
            return .string(RFC3339.string(from: date))
        } else if type == Data.self, let data = value as? Data {
            return .string(data.base64EncodedString())
        } else if type == URL.self, let url = value as? URL {
            return .string(url.absoluteString)
        } else if type == Decimal.self, let decimal = value as? Decimal {
            return .number(decimal)
        }
        return nil
    }

    static func integer<Integer: BinaryInteger>(_ value: Integer, codingPath: @autoclosure () -> [any CodingKey]) throws -> JSONValue {
        guard let exact = Int64(exactly: value) else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: codingPath(), debugDescription: "\(value) does not fit a 64-bit signed integer"))
        }
        return .integer(exact)
    }

    static func floating<Floating: BinaryFloatingPoint & LosslessStringConvertible>(
        _ value: Floating, codingPath: @autoclosure () -> [any CodingKey]
    ) throws -> JSONValue {
        guard value.isFinite, let decimal = Decimal(string: String(value)) else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath(), debugDescription: "\(value) is not a finite JSON number"))
        }
        return .number(decimal)
    }
}

/// An array element's or a super encoder's coding key.
private struct IndexKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(intValue: Int) {
        self.stringValue = "Index \(intValue)"
        self.intValue = intValue
    }

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }
}

private struct TreeEncoder: Encoder {
    let node: Node
    var codingPath: [any CodingKey] { node.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.makeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.makeArray()
        return UnkeyedContainer(node: node)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(node: node)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    var codingPath: [any CodingKey] { node.codingPath }

    private func set(_ value: JSONValue, _ key: Key) { node.addMember(key.stringValue, .value(value)) }

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
        node.addMember(key.stringValue, try Node.slot(for: value, parent: node, key: key))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = node.memberNode(key)
        child.makeObject()
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = node.memberNode(key)
        child.makeArray()
        return UnkeyedContainer(node: child)
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(node: node.memberNode(IndexKey(stringValue: "super"))) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { TreeEncoder(node: node.memberNode(key)) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: Node
    var codingPath: [any CodingKey] { node.codingPath }
    var count: Int {
        node.kind == .array ? node.slots.count : 0
    }

    private func add(_ value: JSONValue) {
        node.makeArray()
        node.slots.append(.value(value))
    }

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
        node.makeArray()
        node.slots.append(try Node.slot(for: value, parent: node, key: IndexKey(intValue: node.slots.count)))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = node.elementNode()
        child.makeObject()
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = node.elementNode()
        child.makeArray()
        return UnkeyedContainer(node: child)
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(node: node.elementNode()) }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let node: Node
    var codingPath: [any CodingKey] { node.codingPath }

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
        try Node.encode(value, into: node)
    }
}
