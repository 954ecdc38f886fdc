import Hummingbird
import Logging
import ServiceKit

/// Builds the whole payout application without running it.
func buildApplication(_ settings: ServiceSettings, logger: Logger) -> some ApplicationProtocol {
    let app = ServiceApplication(settings: settings, logger: logger)
    let router = app.makeRouter()
    return app.makeApplication(router: router)
}
