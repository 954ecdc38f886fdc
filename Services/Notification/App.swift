import ArgumentParser
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle

/// The notification executable: signed webhook delivery to subscribers (DESIGN.md, Notification).
@main
struct NotificationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration.service(
        NotificationExecutable.self, abstract: "Signed webhook delivery to subscribers.", subcommands: [RekeySecretsCommand.self])
}

/// What `notification serve` runs.
enum NotificationExecutable: ServiceExecutable {
    typealias Options = NotificationOptions
    static let serviceName = "notification"
    static let serveAbstract = "Serve the notification API and deliver webhooks."

    static func application(_ configuration: NotificationConfiguration, logger: Logger) -> some Service {
        buildApplication(configuration, logger: logger)
    }
}
