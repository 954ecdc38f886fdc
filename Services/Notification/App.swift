import ArgumentParser
import Hummingbird
import Logging
import ServiceKit

/// The notification executable: signed webhook delivery to subscribers. It has no settings of its own yet: `serve` takes the shared
/// ones (`ServiceOptions`).
@main
struct NotificationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration.service(NotificationExecutable.self, abstract: "Signed webhook delivery to subscribers.")
}

/// What `notification serve` runs.
enum NotificationExecutable: SharedSettingsExecutable {
    static let serviceName = "notification"
    static let defaultPort = 8082
    static let serveAbstract = "Serve the notification API."

    static func application(_ settings: ServiceSettings, logger: Logger) -> some ApplicationProtocol {
        buildApplication(settings, logger: logger)
    }
}
