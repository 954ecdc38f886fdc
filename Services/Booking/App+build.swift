import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceKit

/// Builds the whole booking application without running it, so tests can drive it in-process.
func buildApplication(_ configuration: BookingConfiguration, logger: Logger) -> some ApplicationProtocol {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    let router = app.makeRouter()
    let parts = BookingParts(app: app, configuration: configuration)
    parts.addRoutes(to: router)
    return app.makeApplication(
        router: router,
        services: [
            IdempotencyKeyPurger(postgres: app.postgres, logger: logger), parts.sagaConsumer(logger: logger),
            SagaDeadlinePoller(postgres: app.consumerPostgres, holds: parts.holds, logger: logger), parts.sagaReconciler(logger: logger),
            SagaStateGauges(operations: parts.sagaOperations, logger: logger),
            RetentionSweeper(postgres: app.consumerPostgres, rules: parts.retentionRules, logger: logger),
        ])
}

/// The booking service's components over one set of Postgres and Redis clients.
struct BookingParts: Sendable {
    let app: ServiceApplication
    let inventory: PostgresInventoryRepository
    let bookings: PostgresBookingRepository
    let catalog: EventCatalog
    let holds: SeatHoldStore
    let configuration: BookingConfiguration

    init(app: ServiceApplication, configuration: BookingConfiguration) {
        self.app = app
        self.configuration = configuration
        inventory = PostgresInventoryRepository(postgres: app.postgres)
        bookings = PostgresBookingRepository(postgres: app.postgres, refundPendingBound: configuration.refundPendingBound)
        catalog = EventCatalog(repository: inventory)
        holds = SeatHoldStore(redis: app.redis)
    }

    /// Listing and resuming sagas (admin routes, `booking saga`).
    var sagaOperations: SagaOperations {
        SagaOperations(postgres: app.postgres, refundPendingBound: configuration.refundPendingBound)
    }

    /// The saga coordinator: consumer group `booking-saga` on `stream:payments`.
    func sagaConsumer(
        logger: Logger, now: @escaping @Sendable () -> Date = Date.init,
        tuning: (inout StreamConsumer<SagaCoordinator>.Configuration) -> Void = { _ in }
    ) -> StreamConsumer<SagaCoordinator> {
        var configuration = StreamConsumer<SagaCoordinator>.Configuration(stream: Streams.payments, group: SagaCoordinator.group)
        configuration.concurrency = self.configuration.sagaConcurrency
        tuning(&configuration)
        return StreamConsumer(
            postgres: app.consumerPostgres, redis: app.redis, handler: SagaCoordinator(holds: holds, logger: logger, now: now),
            configuration: configuration, logger: logger)
    }

    /// Applies payment events the saga coordinator never received from `stream:payments` (Redis lost
    /// them) from the outbox, through the coordinator's own handler and inbox.
    func sagaReconciler(logger: Logger, now: @escaping @Sendable () -> Date = Date.init) -> OutboxReconciler<SagaCoordinator> {
        OutboxReconciler(
            postgres: app.consumerPostgres, handler: SagaCoordinator(holds: holds, logger: logger, now: now),
            configuration: .init(stream: Streams.payments, group: SagaCoordinator.group), logger: logger, now: now)
    }

    /// What the booking service deletes past its retention: its consumer's inbox rows and the step
    /// logs of finished sagas.
    var retentionRules: [RetentionRule] {
        [
            .inbox(of: [SagaCoordinator.group], retention: configuration.service.inboxRetention),
            RetentionRule(
                table: "booking.saga_steps", retention: configuration.sagaStepRetention,
                deleteBatch: """
                    DELETE FROM booking.saga_steps WHERE step_id IN (
                        SELECT st.step_id FROM booking.saga_steps st JOIN booking.sagas s USING (booking_id)
                        WHERE s.state IN ('refunded', 'cancelled', 'expired') AND s.updated_at < $1 LIMIT $2)
                    """),
        ]
    }

    func addRoutes(to router: Router<ServiceRequestContext>) {
        let client = app.clientAuthentication
        InventoryController(catalog: catalog, inventory: inventory, holds: holds)
            .addRoutes(to: router, client: client, admin: app.adminAuthentication)
        HoldController(
            catalog: catalog, inventory: inventory, holds: holds, holdTTL: configuration.holdTTL,
            maximumSeatsPerHold: configuration.maxSeatsPerHold
        ).addRoutes(to: router, client: client)
        BookingController(
            repository: bookings, catalog: catalog, holds: holds, paymentWindow: configuration.paymentWindow,
            paymentGrace: configuration.paymentGrace
        ).addRoutes(to: router, client: client)
        SagaController(postgres: app.postgres, operations: sagaOperations)
            .addRoutes(to: router, client: client, admin: app.adminAuthentication)
    }
}
