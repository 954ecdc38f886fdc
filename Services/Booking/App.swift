import ArgumentParser
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle

/// The booking executable: inventory, holds, bookings and the saga coordinator.
@main
struct BookingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration.service(
        BookingExecutable.self, abstract: "Events, seat holds and bookings.", subcommands: [SagaCommand.self, CheckCommand.self])
}

/// What `booking serve` runs.
enum BookingExecutable: ServiceExecutable {
    typealias Options = BookingOptions
    static let serviceName = "booking"
    static let serveAbstract = "Serve the booking API."

    static func application(_ configuration: BookingConfiguration, logger: Logger) -> some Service {
        buildApplication(configuration, logger: logger)
    }
}
