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
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: #"{"ts":"#.utf8)
        JSONValue.writeString(RFC3339.string(from: Date()), to: &line)
        line.append(contentsOf: #","level":"#.utf8)
        JSONValue.writeString(event.level.rawValue, to: &line)
        line.append(contentsOf: #","service":"#.utf8)
        JSONValue.writeString(service, to: &line)
        line.append(contentsOf: #","message":"#.utf8)
        JSONValue.writeString(event.message.description, to: &line)
        for key in fields.keys.sorted() where !["ts", "level", "service", "message"].contains(key) {
            line.append(UInt8(ascii: ","))
            JSONValue.writeString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            if let value = fields[key] { appendJSON(value, to: &line) }
        }
        if event.level >= .error {
            line.append(contentsOf: #","source":"#.utf8)
            JSONValue.writeString("\(event.file):\(event.line)", to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
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

    func write(_ line: [UInt8]) {
        var bytes = line
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

private func appendJSON(_ value: Logger.Metadata.Value, to line: inout [UInt8]) {
    switch value {
    case .string(let text): JSONValue.writeString(text, to: &line)
    case .stringConvertible(let convertible): JSONValue.writeString(convertible.description, to: &line)
    case .array(let values):
        line.append(UInt8(ascii: "["))
        for (index, element) in values.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            appendJSON(element, to: &line)
        }
        line.append(UInt8(ascii: "]"))
    case .dictionary(let dictionary):
        line.append(UInt8(ascii: "{"))
        for (index, key) in dictionary.keys.sorted().enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            JSONValue.writeString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            if let element = dictionary[key] { appendJSON(element, to: &line) }
        }
        line.append(UInt8(ascii: "}"))
    }
}
