import Hummingbird
import Logging
import ServiceKit

/// Builds the whole booking application without running it, so tests can drive it in-process.
func buildApplication(_ configuration: BookingConfiguration, logger: Logger) -> some ApplicationProtocol {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    let router = app.makeRouter()
    return app.makeApplication(router: router)
}
