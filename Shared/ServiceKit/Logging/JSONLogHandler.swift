import Foundation
import Logging
import SharedModel
import Synchronization

/// Writes one JSON object per line to standard output:
/// `{"ts":"2026-11-21T08:44:21.123Z","level":"info","service":"booking","message":"...","correlation_id":"..."}`.
///
/// Metadata becomes top-level fields (nested values as JSON). Never put secrets in log metadata: the
/// handler cannot tell them apart.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let service: String
    private let output: JSONLineOutput

    public init(label: String, service: String, level: Logger.Level, output: JSONLineOutput = .standardOutput) {
        self.service = service
        self.logLevel = level
        self.output = output
        _ = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        var line = "{\"ts\":"
        appendJSONString(RFC3339.string(from: Date()), to: &line)
        line += ",\"level\":"
        appendJSONString(event.level.rawValue, to: &line)
        line += ",\"service\":"
        appendJSONString(service, to: &line)
        line += ",\"message\":"
        appendJSONString(event.message.description, to: &line)
        for key in fields.keys.sorted() where !["ts", "level", "service", "message"].contains(key) {
            line += ","
            appendJSONString(key, to: &line)
            line += ":"
            if let value = fields[key] { appendJSON(value, to: &line) }
        }
        if event.level >= .error {
            line += ",\"source\":"
            appendJSONString("\(event.file):\(event.line)", to: &line)
        }
        line += "}\n"
        output.write(line)
    }
}

/// Where JSON lines go; writes whole lines atomically with respect to each other.
public final class JSONLineOutput: Sendable {
    private let lock: Mutex<Int32>

    public static let standardOutput = JSONLineOutput(descriptor: STDOUT_FILENO)

    /// Writes to an open file descriptor (standard output, or a pipe in tests).
    public init(descriptor: Int32) {
        lock = Mutex(descriptor)
    }

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.withLock { descriptor in
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count, let base = buffer.baseAddress {
                    let written = Foundation.write(descriptor, base + offset, buffer.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}

private func appendJSON(_ value: Logger.Metadata.Value, to line: inout String) {
    switch value {
    case .string(let text): appendJSONString(text, to: &line)
    case .stringConvertible(let convertible): appendJSONString(convertible.description, to: &line)
    case .array(let values):
        line += "["
        for (index, element) in values.enumerated() {
            if index > 0 { line += "," }
            appendJSON(element, to: &line)
        }
        line += "]"
    case .dictionary(let dictionary):
        line += "{"
        for (index, key) in dictionary.keys.sorted().enumerated() {
            if index > 0 { line += "," }
            appendJSONString(key, to: &line)
            line += ":"
            if let element = dictionary[key] { appendJSON(element, to: &line) }
        }
        line += "}"
    }
}

/// Appends `text` as a JSON string literal.
func appendJSONString(_ text: String, to line: inout String) {
    line += "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": line += "\\\""
        case "\\": line += "\\\\"
        case "\n": line += "\\n"
        case "\r": line += "\\r"
        case "\t": line += "\\t"
        case _ where scalar.value < 0x20:
            line += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
        default: line.unicodeScalars.append(scalar)
        }
    }
    line += "\""
}
