import ArgumentParser
import Foundation
import Logging
import ServiceKit

/// The settings a payout run reads, wherever it runs (`payout serve`, `payout run`).
struct RunOptions: ParsableArguments {
    @Option(help: "How long after its event ends a booking's revenue becomes payable, e.g. 48h or 0s (PAYOUT_SETTLEMENT_DELAY).")
    var payoutSettlementDelay: String?
    @Option(help: "The time zone of run dates and of the schedule, e.g. Europe/Paris (PAYOUT_TIME_ZONE, default UTC).")
    var payoutTimeZone: String?
    @Option(help: "Hosts computed per transaction of a run (PAYOUT_BATCH_HOSTS, default 500).")
    var payoutBatchHosts: String?
    @Option(help: "Connections a run computes its batches on at once (PAYOUT_RUN_CONNECTIONS, default 2).")
    var payoutRunConnections: String?
}

/// How a run computes, from ``RunOptions``.
struct RunSettings: Sendable {
    /// Revenue and fees of a booking are payable once its event ended this long before the cut-off.
    var settlementDelay: Duration = .seconds(48 * 3_600)
    /// Run dates are days in this zone; a date's cut-off is the end of that day here.
    var timeZone = TimeZone(identifier: "UTC") ?? .gmt
    /// Host balances (host and currency) computed in one transaction.
    var batchHosts = 500
    /// Batches computed at once, each on a connection of its own (the run lock's included).
    var connections = 2

    init() {}

    init(reader: ConfigurationReader) throws(ConfigurationError) {
        settlementDelay = try reader.duration(
            "PAYOUT_SETTLEMENT_DELAY", default: .seconds(48 * 3_600), in: .seconds(0) ... .seconds(366 * 86_400))
        if let name = reader.string("PAYOUT_TIME_ZONE") {
            guard let zone = TimeZone(identifier: name) else {
                throw ConfigurationError(name: "PAYOUT_TIME_ZONE", reason: "must be an IANA time zone such as UTC or Europe/Paris")
            }
            timeZone = zone
        }
        batchHosts = try reader.integer("PAYOUT_BATCH_HOSTS", default: 500, in: 1...100_000)
        connections = try reader.integer("PAYOUT_RUN_CONNECTIONS", default: 2, in: 1...32)
    }
}

/// `payout serve`'s options: the shared ones, the run's and the service's own.
struct PayoutOptions: ParsableArguments {
    @OptionGroup(title: "Shared options") var shared: ServiceOptions
    @OptionGroup(title: "Run options") var run: RunOptions
    @Option(help: "The platform's fee in basis points of a booking's amount, 0-10000 (PLATFORM_FEE_BPS, default 1000).")
    var platformFeeBps: String?
    @Option(help: "Run each day's payout at this time of day in PAYOUT_TIME_ZONE, HH:MM; unset = no schedule (PAYOUT_SCHEDULE).")
    var payoutSchedule: String?
    @Option(help: "The payment provider's API base URL, default https://api.stripe.com (PROVIDER_BASE_URL).") var providerBaseURL: String?
    @Option(help: "The payment provider's secret API key (PROVIDER_API_KEY, required).") var providerAPIKey: String?
    @Option(help: "How long one provider call may take, e.g. 10s (PROVIDER_TIMEOUT).") var providerTimeout: String?
}

/// The payout service's settings (DESIGN.md, Payout and Configuration).
struct PayoutConfiguration: ServeConfiguration {
    var service: ServiceSettings
    var logLevel: Logger.Level { service.logLevel }
    var run: RunSettings
    /// The fee of hosts without their own, in basis points.
    var platformFeeBasisPoints: Int
    /// The time of day `serve` runs the previous day's payout; nil = no schedule.
    var schedule: TimeOfDay?
    var provider: TransferProvider.Configuration

    init(reader: ConfigurationReader) throws(ConfigurationError) {
        service = try ServiceSettings(serviceName: "payout", defaultPort: 8083, requiresAPIKeys: false, reader: reader)
        run = try RunSettings(reader: reader)
        platformFeeBasisPoints = try reader.integer("PLATFORM_FEE_BPS", default: 1_000, in: 0...10_000)
        if let text = reader.string("PAYOUT_SCHEDULE") {
            guard let time = TimeOfDay(text) else {
                throw ConfigurationError(name: "PAYOUT_SCHEDULE", reason: "must be a time of day HH:MM such as 02:30")
            }
            schedule = time
        }
        provider = TransferProvider.Configuration(
            baseURL: try reader.baseURL("PROVIDER_BASE_URL", default: "https://api.stripe.com"),
            apiKey: try reader.secret("PROVIDER_API_KEY"),
            timeout: try reader.duration("PROVIDER_TIMEOUT", default: .seconds(10), in: .milliseconds(100) ... .seconds(120))
        )
    }
}

/// A time of day, `HH:MM` (24 h).
struct TimeOfDay: Sendable, Equatable {
    var hour: Int
    var minute: Int

    init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), (0...23).contains(hour), (0...59).contains(minute)
        else { return nil }
        self.hour = hour
        self.minute = minute
    }
}
