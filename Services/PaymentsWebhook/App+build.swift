import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Messaging
import ProviderAPI
import ServiceKit
import ServiceLifecycle
import SharedModel

/// Builds the whole payments-webhook application without running it.
func buildApplication(_ configuration: PaymentsConfiguration, logger: Logger) -> some Service {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    for warning in configuration.startupWarnings { logger.warning("\(warning)") }
    let parts = PaymentsParts(app: app, configuration: configuration)
    let router = parts.makeRouter()
    var services: [any Service] = []
    let sweeps = configuration.providerSweepInterval > .zero
    if configuration.runsProviderWorker || sweeps {
        // Stopped in reverse order: the worker and the sweeper finish before their HTTP client shuts down.
        let client = StripeProvider.makeHTTPClient()
        services.append(ShutdownHook { try await client.shutdown() })
        let provider = StripeProvider(client: client, configuration: configuration.provider)
        if configuration.runsProviderWorker { services.append(parts.providerWorker(provider: provider, logger: logger)) }
        if sweeps { services.append(parts.sweeper(api: provider.api, logger: logger)) }
    }
    services.append(RetentionSweeper(postgres: app.consumerPostgres, rules: parts.retentionRules, logger: logger, clock: parts.clock))
    return app.makeApplication(router: router, services: services)
}

/// The payments-webhook service's components over one set of Postgres and Redis clients.
struct PaymentsParts: Sendable {
    let app: ServiceApplication
    let configuration: PaymentsConfiguration
    let store: ProviderEventStore
    let limiter: UnverifiedRequestLimiter
    /// Dates deliveries, records and events; tests move it.
    let clock: WallClock

    init(app: ServiceApplication, configuration: PaymentsConfiguration, clock: WallClock = .system) {
        self.app = app
        self.configuration = configuration
        self.clock = clock
        store = ProviderEventStore(postgres: app.postgres)
        limiter = UnverifiedRequestLimiter(limits: configuration.unverifiedLimit)
    }

    /// The service's router with its routes. They need only Postgres: a webhook is stored with its
    /// domain event in the outbox, and Redis is the relay's and the provider worker's, both in the
    /// background. So a Redis outage leaves `/readyz` 200 (`"redis": "down"`) and webhooks accepted;
    /// the relay publishes them when Redis is back.
    func makeRouter() -> Router<ServiceRequestContext> {
        let router = app.makeRouter(redisRequired: false)
        addRoutes(to: router)
        return router
    }

    func addRoutes(to router: Router<ServiceRequestContext>) {
        WebhookController(
            store: store, stripeSecrets: configuration.stripeWebhookSecrets, paymentEventsSecrets: configuration.paymentEventsSecrets,
            tolerance: configuration.signatureTolerance, limiter: limiter,
            clientAddresses: ClientAddressResolver(policy: configuration.clientAddresses), clock: clock
        ).addRoutes(to: router)
        ProviderEventsAdminController(store: store).addRoutes(to: router, admin: app.adminAuthentication)
    }

    /// What the payments service deletes past its retention: its worker's inbox rows and stored
    /// provider events.
    var retentionRules: [RetentionRule] {
        [
            .inbox(of: [ProviderWorker.group], retention: configuration.service.inboxRetention),
            ProviderEventStore.retentionRule(retention: configuration.providerEventRetention),
        ]
    }
    /// The missed-webhook sweeper, on the consumers' pool.
    func sweeper(api: StripeAPIClient, logger: Logger) -> ProviderEventSweeper {
        ProviderEventSweeper(
            api: api, store: ProviderEventStore(postgres: app.consumerPostgres), postgres: app.consumerPostgres, logger: logger, clock: clock,
            interval: configuration.providerSweepInterval, lookback: configuration.providerSweepLookback,
            intentAge: configuration.providerSweepIntentAge, settle: configuration.providerSweepSettle)
    }

    /// The provider worker: consumer group `payments-provider` on `stream:booking`.
    func providerWorker(
        provider: any PaymentProvider, logger: Logger, tuning: (inout StreamConsumer<ProviderWorker>.Configuration) -> Void = { _ in }
    ) -> StreamConsumer<ProviderWorker> {
        var consumer = StreamConsumer<ProviderWorker>.Configuration(stream: Streams.stream(for: .booking), group: ProviderWorker.group)
        tuning(&consumer)
        return StreamConsumer(
            postgres: app.consumerPostgres, redis: app.redis, handler: ProviderWorker(provider: provider, logger: logger, clock: clock),
            configuration: consumer, logger: logger, clock: clock)
    }
}
