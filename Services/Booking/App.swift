import ArgumentParser
import Hummingbird
import ServiceKit

/// The booking executable: inventory, holds, bookings and (later) the saga coordinator.
@main
struct BookingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "booking",
        abstract: "Events, seat holds and bookings.",
        subcommands: [Serve.self, MigrateCommand.self, DeadLetterCommand.self, SagaCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `booking serve`: runs the HTTP API until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the booking API.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Client API keys, comma-separated (API_KEYS).") var apiKeys: String?
    @Option(help: "Operator token for admin routes (ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "How long a hold lasts, e.g. 10m; at most 30m (HOLD_TTL).") var holdTTL: String?
    @Option(help: "How long a booking waits for payment, e.g. 15m (PAYMENT_WINDOW).") var paymentWindow: String?
    @Option(help: "Extra time for a payment made in the window to arrive, e.g. 2m (PAYMENT_GRACE).") var paymentGrace: String?
    @Option(help: "The most seats one hold may take (MAX_SEATS_PER_HOLD).") var maxSeatsPerHold: Int?
    @Option(help: "How long a refund may stay unconfirmed before an operator must look, e.g. 1h (REFUND_PENDING_BOUND).")
    var refundPendingBound: String?

    func run() async throws {
        let flags = common.flags.merging([
            "API_KEYS": apiKeys, "ADMIN_TOKEN": adminToken, "HOLD_TTL": holdTTL, "PAYMENT_WINDOW": paymentWindow,
            "PAYMENT_GRACE": paymentGrace, "MAX_SEATS_PER_HOLD": maxSeatsPerHold.map(String.init),
            "REFUND_PENDING_BOUND": refundPendingBound,
        ]) { _, flag in flag }
        let configuration = ServiceLauncher.configuration { try BookingConfiguration(reader: ConfigurationReader(flags: flags)) }
        let logger = ServiceLauncher.bootstrap(service: "booking", logLevel: configuration.service.logLevel)
        let app = buildApplication(configuration, logger: logger)
        try await app.runService()
    }
}
