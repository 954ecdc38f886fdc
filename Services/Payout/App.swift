import ArgumentParser
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle

/// The payout executable: the ledger of what hosts earned, nightly payout runs and their transfers.
@main
struct PayoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration.service(
        PayoutExecutable.self, abstract: "Nightly payouts to hosts.", subcommands: [RunCommand.self])
}

/// What `payout serve` runs.
enum PayoutExecutable: ServiceExecutable {
    typealias Options = PayoutOptions
    static let serviceName = "payout"
    static let serveAbstract = "Serve the payout API, keep the ledger, run the schedule and transfer payouts."

    static func application(_ configuration: PayoutConfiguration, logger: Logger) -> some Service {
        buildApplication(configuration, logger: logger)
    }
}
