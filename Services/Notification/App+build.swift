import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceKit
import ServiceLifecycle
import SharedModel

/// Builds the whole notification application without running it.
func buildApplication(_ configuration: NotificationConfiguration, logger: Logger) -> some Service {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    let clients = WebhookSender.makeClients(perHost: configuration.delivery.maximumInFlight)
    let parts = NotificationParts(app: app, configuration: configuration, clients: clients)
    let router = app.makeRouter(redisRequired: false)
    parts.addRoutes(to: router)
    // Stopped in reverse order: the dispatcher finishes before the HTTP clients shut down.
    let closeClients = ShutdownHook {
        await clients.pinned.shutdown()
        try await clients.client.shutdown()
    }
    var services: [any Service] = [closeClients, parts.dispatcher, parts.maintenance(logger: logger)]
    // One service: the five consumers get the shutdown signal together, not one after another.
    services.append(ConcurrentServices(parts.fanOutConsumers(logger: logger)))
    services.append(RetentionSweeper(postgres: app.consumerPostgres, rules: parts.retentionRules, logger: logger, clock: parts.clock))
    return app.makeApplication(router: router, services: services)
}

/// The notification service's components over one set of Postgres and Redis clients.
struct NotificationParts: Sendable {
    let app: ServiceApplication
    let configuration: NotificationConfiguration
    let clock: WallClock
    let endpoints: EndpointService
    let deliveries: DeliveryRepository
    let dispatcher: DeliveryDispatcher

    /// `resolver` resolves endpoint hosts for the SSRF policy, which accepts `treatedAsPublic` as if
    /// they were public addresses; `clock` dates everything and drives the retry schedule; `random`
    /// picks each retry's jitter in `-1...1`. Tests inject all four.
    init(
        app: ServiceApplication, configuration: NotificationConfiguration, clients: (client: HTTPClient, pinned: PinnedHTTPClients),
        resolver: any HostResolver = SystemHostResolver(), treatedAsPublic: Set<IPAddress> = [],
        clock: WallClock = .system, random: @escaping @Sendable () -> Double = { Double.random(in: -1...1) }
    ) {
        self.app = app
        self.configuration = configuration
        self.clock = clock
        let policy = EndpointURLPolicy(
            allowsPrivateNetworks: configuration.allowsPrivateNetworks, resolver: resolver, treatedAsPublic: treatedAsPublic)
        let box = SecretBox(keys: configuration.secretsKeys)
        endpoints = EndpointService(repository: EndpointRepository(postgres: app.postgres), policy: policy, secrets: box, clock: clock)
        deliveries = DeliveryRepository(postgres: app.postgres)
        var logger = app.logger
        logger[metadataKey: "component"] = "delivery"
        dispatcher = DeliveryDispatcher(
            repository: DeliveryRepository(postgres: app.consumerPostgres),
            sender: WebhookSender(client: clients.client, pinned: clients.pinned, timeout: configuration.delivery.timeout), policy: policy,
            secrets: box,
            settings: configuration.delivery, rateLimits: EndpointRateLimiter(redis: app.redis, logger: logger), clock: clock, logger: logger,
            random: random)
    }

    func addRoutes(to router: Router<ServiceRequestContext>) {
        let wake: @Sendable () -> Void = { [dispatcher] in dispatcher.wake() }
        EndpointController(endpoints: endpoints, deliveries: deliveries, clock: clock, wake: wake).addRoutes(
            to: router, admin: app.adminAuthentication)
        DeliveryController(deliveries: deliveries, clock: clock, wake: wake).addRoutes(to: router, admin: app.adminAuthentication)
    }

    /// One consumer (group `notification`) per stream, each handing deliverable events to the fan-out.
    func fanOutConsumers(
        logger: Logger, tuning: (inout StreamConsumer<NotificationFanOut>.Configuration) -> Void = { _ in }
    ) -> [StreamConsumer<NotificationFanOut>] {
        let handler = NotificationFanOut(clock: clock, wake: { [dispatcher] in dispatcher.wake() })
        return NotificationFanOut.streams.map { stream in
            var consumer = StreamConsumer<NotificationFanOut>.Configuration(stream: stream, group: NotificationFanOut.group)
            tuning(&consumer)
            return StreamConsumer(
                postgres: app.consumerPostgres, redis: app.redis, handler: handler, configuration: consumer, logger: logger, clock: clock)
        }
    }

    func maintenance(logger: Logger) -> DeliveryMaintenance {
        DeliveryMaintenance(
            repository: DeliveryRepository(postgres: app.consumerPostgres), clock: clock, logger: logger, wake: { [dispatcher] in dispatcher.wake() })
    }

    /// What the service deletes past `NOTIFICATION_RETENTION`: its fan-out's inbox rows (at least as
    /// long as the outbox keeps events), finished deliveries with their attempts, and received events
    /// no delivery refers to any more.
    var retentionRules: [RetentionRule] {
        let retention = configuration.retention
        return [
            .inbox(of: [NotificationFanOut.group], retention: configuration.service.inboxRetention),
            RetentionRule(table: "notification.deliveries", retention: retention) { cutoff, limit in
                """
                DELETE FROM notification.deliveries WHERE id IN (
                    SELECT id FROM notification.deliveries WHERE status <> 'pending' AND completed_at < \(cutoff) LIMIT \(limit))
                """
            },
            RetentionRule(table: "notification.events", retention: retention) { cutoff, limit in
                """
                DELETE FROM notification.events WHERE event_id IN (
                    SELECT ev.event_id FROM notification.events ev
                    WHERE ev.received_at < \(cutoff)
                      AND NOT EXISTS (SELECT 1 FROM notification.deliveries d WHERE d.event_id = ev.event_id)
                    LIMIT \(limit))
                """
            },
        ]
    }
}
