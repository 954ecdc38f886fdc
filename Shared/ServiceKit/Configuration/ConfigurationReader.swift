import Foundation
import Logging

/// A setting that is missing or invalid. Start-up stops with one line naming it and exit status 2.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The setting's environment name, e.g. `STRIPE_WEBHOOK_SECRETS`.
    public let name: String
    /// What is wrong, never the value itself (it may be a secret).
    public let reason: String

    public init(name: String, reason: String) {
        self.name = name
        self.reason = reason
    }

    public var description: String { "\(name) \(reason)" }
}

/// Reads settings with the precedence flags > environment > defaults.
///
/// Settings are named by their environment variable (`DATABASE_URL`); a flag given on the command line
/// (`--database-url`) is registered under the same name (``SettingOptions/values(of:)``). An empty value
/// counts as unset, so a secret can never fall back to an empty string.
public struct ConfigurationReader: Sendable {
    private let flags: [String: String]
    private let environment: [String: String]
    private let declared: Set<String>?

    /// - Parameters:
    ///   - flags: values from the command line by environment name; `nil` (or empty) when not given.
    ///   - declared: when given, every name read must be one of these (the options `serve` declares), so a
    ///     setting cannot be readable from the environment alone; debug builds stop on one that is not.
    public init(flags: [String: String?] = [:], environment: [String: String] = ProcessInfo.processInfo.environment, declared: Set<String>? = nil) {
        self.flags = flags.compactMapValues { $0 }
        self.environment = environment
        self.declared = declared
    }

    /// The raw value, or nil when neither a flag nor the environment sets it (or sets it empty).
    public func string(_ name: String) -> String? {
        assert(declared?.contains(name) ?? true, "\(name) is read but no option declares it: add `@Option var ...: String?` for it")
        if let flag = flags[name], !flag.isEmpty { return flag }
        if let value = environment[name], !value.isEmpty { return value }
        return nil
    }

    /// A value that must be present.
    public func required(_ name: String) throws(ConfigurationError) -> String {
        guard let value = string(name) else { throw ConfigurationError(name: name, reason: "is required") }
        return value
    }

    /// A secret that must be present and not blank.
    public func secret(_ name: String) throws(ConfigurationError) -> String {
        let value = try required(name)
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { throw ConfigurationError(name: name, reason: "must not be blank") }
        return value
    }

    /// A comma-separated list of secrets (e.g. several webhook secrets during rotation); each must be
    /// non-blank and at least one must be given.
    public func secretList(_ name: String) throws(ConfigurationError) -> [String] {
        let items = try required(name).split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard !items.isEmpty, items.allSatisfy({ !$0.isEmpty }) else {
            throw ConfigurationError(name: name, reason: "must be a comma-separated list of non-empty values")
        }
        return items
    }

    /// An integer within `range`, or `defaultValue` when unset.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(name: name, reason: "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`), or `defaultValue` when unset.
    public func boolean(_ name: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let text = string(name) else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw ConfigurationError(name: name, reason: "must be true or false")
        }
    }

    /// A duration such as `500ms`, `90s`, `15m`, `2h` (a bare number means seconds) within `range`.
    public func duration(_ name: String, default defaultValue: Duration, in range: ClosedRange<Duration>) throws(ConfigurationError) -> Duration {
        guard let text = string(name) else { return defaultValue }
        guard let value = Self.parseDuration(text), range.contains(value) else {
            throw ConfigurationError(
                name: name, reason: "must be a duration like 500ms, 90s, 15m or 2h, from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// An `http` or `https` base URL with a host, without its trailing slash (e.g. `https://api.stripe.com`).
    public func baseURL(_ name: String, default defaultValue: String) throws(ConfigurationError) -> String {
        let text = string(name) ?? defaultValue
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(name: name, reason: "must be an http(s) URL such as \(defaultValue)")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// The log level (`trace` ... `critical`).
    public func logLevel(_ name: String = "LOG_LEVEL", default defaultValue: Logger.Level = .info) throws(ConfigurationError) -> Logger.Level {
        guard let text = string(name) else { return defaultValue }
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ConfigurationError(name: name, reason: "must be one of trace, debug, info, notice, warning, error, critical")
        }
        return level
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(suffix: String, scale: Duration)] = [("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600))]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number >= 0 else { return nil }
            return scale * number
        }
        return Int(text).flatMap { $0 >= 0 ? .seconds($0) : nil }
    }
}
