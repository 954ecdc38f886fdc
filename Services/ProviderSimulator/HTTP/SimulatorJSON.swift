import SharedModel

/// A JSON document with ordered object members, serialized deterministically.
///
/// The simulator writes its own JSON so responses keep Stripe's field order, metadata comes out
/// sorted by key, and a recorded body can be replayed byte for byte.
enum SimulatorJSON: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([SimulatorJSON])
    /// Members in the order they are written.
    case object([(String, SimulatorJSON)])
    /// Bytes that are already a serialized JSON value (an event payload, a recorded body).
    case raw([UInt8])

    /// `.string` for a value, `.null` for `nil`.
    static func string(_ value: String?) -> SimulatorJSON {
        value.map { .string($0) } ?? .null
    }

    /// `.int` for a value, `.null` for `nil`.
    static func int(_ value: Int?) -> SimulatorJSON {
        value.map { .int($0) } ?? .null
    }

    /// An object of string members sorted by key (how metadata is written).
    static func sortedStrings(_ dictionary: [String: String]) -> SimulatorJSON {
        .object(dictionary.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
    }

    /// The compact UTF-8 serialization (no whitespace, `/` not escaped).
    var bytes: [UInt8] {
        var output: [UInt8] = []
        write(into: &output)
        return output
    }

    private func write(into output: inout [UInt8]) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let value):
            output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value):
            output.append(contentsOf: String(value).utf8)
        case .string(let value):
            JSONValue.writeString(value, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                element.write(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.0, to: &output)
                output.append(UInt8(ascii: ":"))
                member.1.write(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        case .raw(let bytes):
            output.append(contentsOf: bytes)
        }
    }
}
