import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceKit
import ServiceLifecycle
import SharedModel

/// Builds the whole booking application without running it, so tests can drive it in-process.
func buildApplication(_ configuration: BookingConfiguration, logger: Logger) -> some Service {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    let router = app.makeRouter()
    let parts = BookingParts(app: app, configuration: configuration)
    parts.addRoutes(to: router)
    return app.makeApplication(
        router: router,
        services: [
            IdempotencyKeyPurger(postgres: app.postgres, logger: logger, clock: parts.clock), parts.sagaConsumer(logger: logger),
            parts.deadlinePoller(logger: logger), parts.eventCancellationWorker(logger: logger),
            parts.sagaReconciler(logger: logger), SagaStateGauges(operations: parts.sagaOperations, logger: logger),
            RetentionSweeper(postgres: app.consumerPostgres, rules: parts.retentionRules, logger: logger, clock: parts.clock),
        ])
}

/// The booking service's components over one set of Postgres and Redis clients and one clock: the
/// stores and repositories, the services between them and the routes, the saga's adapters.
struct BookingParts: Sendable {
    let app: ServiceApplication
    let configuration: BookingConfiguration
    let clock: WallClock
    let inventory: PostgresInventoryRepository
    let catalog: EventCatalog
    let holds: SeatHoldStore
    /// Load, decide, apply: the path every saga input takes.
    let runner: SagaRunner
    let bookings: PostgresBookingRepository
    /// The abuse limits' counters, registered at zero.
    let limitMetrics: HoldLimitMetrics
    /// Cancelling whole events, and which are cancelled (for the hold route).
    let cancellations: EventCancellationStore
    let cancelledEvents: CancelledEvents

    init(app: ServiceApplication, configuration: BookingConfiguration, clock: WallClock = .system) {
        self.app = app
        self.configuration = configuration
        self.clock = clock
        inventory = PostgresInventoryRepository(postgres: app.postgres)
        catalog = EventCatalog(repository: inventory)
        holds = SeatHoldStore(redis: app.redis)
        runner = SagaRunner(decider: SagaDecider(policy: .init(refundPendingBound: configuration.refundPendingBound)))
        bookings = PostgresBookingRepository(postgres: app.postgres, runner: runner)
        limitMetrics = HoldLimitMetrics(apiKeyClients: configuration.apiKeyRateLimits.clients.keys)
        cancellations = EventCancellationStore(postgres: app.postgres, runner: runner)
        cancelledEvents = CancelledEvents(store: cancellations)
    }

    var holdService: HoldService {
        HoldService(
            inventory: inventory, holds: holds, holdTTL: configuration.holdTTL, clock: clock, limits: configuration.holdLimits, metrics: limitMetrics,
            cancelledEvents: cancelledEvents)
    }

    var bookingService: BookingService<PostgresBookingRepository> {
        BookingService(
            repository: bookings, catalog: catalog, holds: holds, paymentWindow: configuration.paymentWindow,
            paymentGrace: configuration.paymentGrace, clock: clock)
    }

    /// Reading, listing and resuming sagas (admin routes, `booking saga`).
    var sagaOperations: SagaOperations {
        SagaOperations(postgres: app.postgres, runner: runner, clock: clock)
    }

    /// The saga coordinator, reading `clock` (the parts' own by default).
    func sagaCoordinator(logger: Logger, clock: WallClock? = nil) -> SagaCoordinator {
        SagaCoordinator(runner: runner, holds: holds, logger: logger, clock: clock ?? self.clock)
    }

    /// The saga coordinator's consumer: group `booking-saga` on `stream:payments`.
    func sagaConsumer(
        logger: Logger, clock: WallClock? = nil, tuning: (inout StreamConsumer<SagaCoordinator>.Configuration) -> Void = { _ in }
    ) -> StreamConsumer<SagaCoordinator> {
        var configuration = StreamConsumer<SagaCoordinator>.Configuration(stream: Streams.payments, group: SagaCoordinator.group)
        configuration.concurrency = self.configuration.sagaConcurrency
        tuning(&configuration)
        return StreamConsumer(
            postgres: app.consumerPostgres, redis: app.redis, handler: sagaCoordinator(logger: logger, clock: clock), configuration: configuration,
            logger: logger, clock: clock ?? self.clock)
    }

    /// Applies payment events the saga coordinator never received from `stream:payments` (Redis lost
    /// them) from the outbox, through the coordinator's own handler and inbox.
    func sagaReconciler(logger: Logger) -> OutboxReconciler<SagaCoordinator> {
        OutboxReconciler(
            postgres: app.consumerPostgres, handler: sagaCoordinator(logger: logger),
            configuration: .init(stream: Streams.payments, group: SagaCoordinator.group), logger: logger, clock: clock)
    }

    /// Expires unpaid bookings and fails overdue refunds, reading `clock` (the parts' own by default).
    func deadlinePoller(logger: Logger, clock: WallClock? = nil) -> SagaDeadlinePoller {
        SagaDeadlinePoller(postgres: app.consumerPostgres, runner: runner, holds: holds, logger: logger, clock: clock ?? self.clock)
    }

    /// Cancels and refunds the bookings of cancelled events, in batches (on the consumers' pool).
    func eventCancellationWorker(logger: Logger, clock: WallClock? = nil) -> EventCancellationWorker {
        EventCancellationWorker(
            store: EventCancellationStore(postgres: app.consumerPostgres, runner: runner), holds: holds, logger: logger, clock: clock ?? self.clock,
            batchSize: configuration.eventCancellationBatch)
    }

    /// What the booking service deletes past its retention: its consumer's inbox rows and the step
    /// logs of finished sagas.
    var retentionRules: [RetentionRule] {
        [
            .inbox(of: [SagaCoordinator.group], retention: configuration.service.inboxRetention),
            RetentionRule(table: "booking.saga_steps", retention: configuration.sagaStepRetention) { cutoff, limit in
                """
                DELETE FROM booking.saga_steps WHERE step_id IN (
                    SELECT st.step_id FROM booking.saga_steps st JOIN booking.sagas s USING (booking_id)
                    WHERE s.state IN ('refunded', 'cancelled', 'expired') AND s.updated_at < \(cutoff) LIMIT \(limit))
                """
            },
        ]
    }

    func addRoutes(to router: Router<ServiceRequestContext>) {
        let client = ClientRateLimitMiddleware(
            authentication: app.clientAuthentication, limits: configuration.apiKeyRateLimits, holds: holds, clock: clock)
        InventoryController(
            catalog: catalog, inventory: inventory, holds: holds, cancellations: cancellations, cancelledEvents: cancelledEvents, clock: clock
        )
        .addRoutes(to: router, client: client, admin: app.adminAuthentication)
        HoldController(catalog: catalog, service: holdService, maximumSeatsPerHold: configuration.maxSeatsPerHold)
            .addRoutes(to: router, client: client)
        BookingController(service: bookingService, partialRefunds: PartialRefunds(postgres: app.postgres, runner: runner, clock: clock))
            .addRoutes(to: router, client: client, admin: app.adminAuthentication)
        SagaController(operations: sagaOperations).addRoutes(to: router, client: client, admin: app.adminAuthentication)
    }
}
