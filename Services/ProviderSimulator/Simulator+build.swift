import Hummingbird
import Logging
import ServiceLifecycle

/// The provider simulator's parts: its in-memory state, the webhook sender (a `Service` owning the
/// HTTP client) and the routes. Build one to run the simulator in-process with a router of your own
/// or inside a larger application; ``buildSimulator(configuration:logger:onServerRunning:)`` is the
/// whole thing ready to run.
package struct StripeSimulator: Sendable {
    /// The settings it was built with.
    package let configuration: SimulatorConfiguration
    let state: SimulatorState
    let webhooks: WebhookSender
    let logger: Logger

    /// A simulator with empty state.
    package init(configuration: SimulatorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.state = SimulatorState()
        self.webhooks = WebhookSender(configuration: configuration, logger: logger)
    }

    /// A router with `/healthz`, the Stripe-compatible `/v1` API and the `/simulator` control API.
    /// Webhooks are delivered only while ``services`` run (e.g. `Application(router:services:)`).
    package func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("healthz") { _, _ in JSONResponse.make(json: .object([("status", .string("ok"))])) }
        StripeAPIRoutes(state: state, webhooks: webhooks, apiKey: configuration.apiKey, logger: logger).add(to: router)
        ControlRoutes(state: state, webhooks: webhooks, logger: logger).add(to: router)
        return router
    }

    /// What must run beside the router: the webhook sender, which shuts its HTTP client down (and
    /// cancels background deliveries) on graceful shutdown.
    package var services: [any Service] { [webhooks] }
}

/// The whole simulator as an application listening on `configuration.host`/`port`, ready for
/// `runService()` or `test(...)`. `onServerRunning` receives the bound port (useful with port 0).
package func buildSimulator(
    configuration: SimulatorConfiguration, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let simulator = StripeSimulator(configuration: configuration, logger: logger)
    return Application(
        router: simulator.makeRouter(),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "provider-simulator"),
        services: simulator.services,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger
    )
}
