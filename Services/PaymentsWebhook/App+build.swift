import Hummingbird
import Logging
import ServiceKit

/// Builds the whole payments-webhook application without running it.
func buildApplication(_ configuration: PaymentsConfiguration, logger: Logger) -> some ApplicationProtocol {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    let router = app.makeRouter()
    return app.makeApplication(router: router)
}
