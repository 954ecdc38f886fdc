import Foundation
import Logging

/// The provider simulator's settings. ``init(flags:environment:)`` reads them with flags over the
/// environment over the defaults; tests build one directly with ``init(apiKey:)``.
package struct SimulatorConfiguration: Sendable {
    /// Interface to listen on (`--host`/`HOST`, default `127.0.0.1`).
    package var host = "127.0.0.1"
    /// Port to listen on (`--port`/`PORT`, default 8090; 0 picks a free port).
    package var port = 8090
    /// The key every `/v1` call must present as `Authorization: Bearer <key>` (`PROVIDER_API_KEY`).
    package var apiKey: String
    /// Where events are POSTed (`WEBHOOK_URL`); `nil` records events without delivering them.
    package var webhookURL: String?
    /// The endpoint's signing secret, used as is (`STRIPE_WEBHOOK_SECRET`, else the first of
    /// `STRIPE_WEBHOOK_SECRETS`). Always set when ``webhookURL`` is.
    package var webhookSecret: String?
    /// Delivery attempts per event (`WEBHOOK_ATTEMPTS`, default 5, 1...10).
    package var webhookAttempts = 5
    /// The wait after the first failed attempt; it doubles after each further one (default 200 ms).
    package var webhookRetryDelay: Duration = .milliseconds(200)
    /// The time one delivery attempt may take, connection included (default 5 s).
    package var webhookTimeout: Duration = .seconds(5)
    /// Log level (`LOG_LEVEL`, default `info`).
    package var logLevel: Logger.Level = .info

    /// Settings with the defaults and no webhook delivery.
    package init(apiKey: String) {
        self.apiKey = apiKey
    }

    /// Reads `flags` (values given on the command line, by environment name) over `environment`.
    /// Empty values count as unset. Throws the first missing or invalid setting.
    package init(
        flags: [String: String?] = [:], environment: [String: String] = ProcessInfo.processInfo.environment
    )
        throws(SimulatorConfigurationError)
    {
        func value(_ name: String) -> String? {
            if let flag = flags[name] ?? nil, !flag.isEmpty { return flag }
            if let variable = environment[name], !variable.isEmpty { return variable }
            return nil
        }
        guard let apiKey = value("PROVIDER_API_KEY") else { throw .init(name: "PROVIDER_API_KEY", reason: "is required") }
        self.apiKey = apiKey
        if let host = value("HOST") { self.host = host }
        if let port = value("PORT") {
            guard let parsed = Int(port), (0...65_535).contains(parsed) else {
                throw .init(name: "PORT", reason: "must be a port number (0-65535)")
            }
            self.port = parsed
        }
        if let attempts = value("WEBHOOK_ATTEMPTS") {
            guard let parsed = Int(attempts), (1...10).contains(parsed) else {
                throw .init(name: "WEBHOOK_ATTEMPTS", reason: "must be an integer from 1 to 10")
            }
            self.webhookAttempts = parsed
        }
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw .init(name: "LOG_LEVEL", reason: "must be one of trace, debug, info, notice, warning, error, critical")
            }
            self.logLevel = parsed
        }
        if let url = value("WEBHOOK_URL") {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                throw .init(name: "WEBHOOK_URL", reason: "must be an http or https URL")
            }
            self.webhookURL = url
            if let secret = value("STRIPE_WEBHOOK_SECRET") {
                self.webhookSecret = secret
            } else if let secrets = value("STRIPE_WEBHOOK_SECRETS") {
                let first = secrets.split(separator: ",", omittingEmptySubsequences: false).first.map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                guard let first, !first.isEmpty else {
                    throw .init(name: "STRIPE_WEBHOOK_SECRETS", reason: "must start with a non-empty secret")
                }
                self.webhookSecret = first
            } else {
                throw .init(name: "STRIPE_WEBHOOK_SECRET", reason: "is required when WEBHOOK_URL is set")
            }
        }
    }
}

/// A missing or invalid setting: `name` is the environment variable, `reason` never holds its value.
package struct SimulatorConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The environment name of the setting.
    package let name: String
    /// Why it was refused.
    package let reason: String

    /// `"<NAME> <reason>"`, e.g. `PROVIDER_API_KEY is required`.
    package var description: String { "\(name) \(reason)" }
}
