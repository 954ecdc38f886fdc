import ArgumentParser
import Hummingbird
import Logging
import ServiceKit

/// The payout executable: nightly payouts to hosts. It has no settings of its own yet: `serve` takes the shared
/// ones (`ServiceOptions`).
@main
struct PayoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration.service(PayoutExecutable.self, abstract: "Nightly payouts to hosts.")
}

/// What `payout serve` runs.
enum PayoutExecutable: SharedSettingsExecutable {
    static let serviceName = "payout"
    static let defaultPort = 8083
    static let serveAbstract = "Serve the payout API."

    static func application(_ settings: ServiceSettings, logger: Logger) -> some ApplicationProtocol {
        buildApplication(settings, logger: logger)
    }
}
