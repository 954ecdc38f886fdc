import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Messaging
import ProviderAPI
import ServiceKit
import ServiceLifecycle
import SharedModel

/// Builds the whole payout application without running it.
func buildApplication(_ configuration: PayoutConfiguration, logger: Logger) -> some Service {
    let app = ServiceApplication(settings: configuration.service, logger: logger)
    let client = StripeAPIClient.makeHTTPClient()
    let parts = PayoutParts(
        app: app, configuration: configuration, transfers: TransferProvider(client: client, configuration: configuration.provider))
    let router = app.makeRouter(redisRequired: false)
    parts.addRoutes(to: router)
    // Stopped in reverse order: the consumers finish before the HTTP client shuts down.
    let services: [any Service] = [
        ShutdownHook { try await client.shutdown() }, parts.executor,
        ConcurrentServices(parts.ledgerConsumers(logger: logger) + [parts.transferConsumer(logger: logger)]),
        ConcurrentServices(parts.ledgerReconcilers(logger: logger)),
        RetentionSweeper(postgres: app.consumerPostgres, rules: parts.retentionRules, logger: logger, clock: parts.clock),
        PayoutRunGauges(postgres: app.consumerPostgres, logger: logger),
    ]
    return app.makeApplication(router: router, services: services)
}

/// The payout service's components over one set of Postgres and Redis clients.
struct PayoutParts: Sendable {
    let app: ServiceApplication
    let configuration: PayoutConfiguration
    let clock: WallClock
    let runner: PayoutRunner
    let executor: RunExecutor
    let transfers: any Transfers

    /// `clock` dates entries, runs and payouts; tests move it and inject `transfers`.
    init(app: ServiceApplication, configuration: PayoutConfiguration, transfers: any Transfers, clock: WallClock = .system) {
        self.app = app
        self.configuration = configuration
        self.clock = clock
        self.transfers = transfers
        var logger = app.logger
        logger[metadataKey: "component"] = "payout-run"
        runner = PayoutRunner(postgres: app.consumerPostgres, settings: configuration.run, clock: clock, logger: logger)
        executor = RunExecutor(runner: runner, schedule: configuration.schedule, logger: logger)
    }

    func addRoutes(to router: Router<ServiceRequestContext>) {
        PayoutController(parts: self).addRoutes(to: router, admin: app.adminAuthentication)
    }

    /// What the ledger's consumers, its reconcilers and tests apply events with.
    var ledgerHandler: LedgerHandler {
        LedgerHandler(platformFeeBasisPoints: configuration.platformFeeBasisPoints, clock: clock)
    }

    /// The ledger: consumer group `payout-ledger` on `stream:booking` and `stream:payments`.
    func ledgerConsumers(
        logger: Logger, tuning: (inout StreamConsumer<LedgerHandler>.Configuration) -> Void = { _ in }
    ) -> [StreamConsumer<LedgerHandler>] {
        let handler = ledgerHandler
        return LedgerHandler.streams.map { stream in
            var consumer = StreamConsumer<LedgerHandler>.Configuration(stream: stream, group: LedgerHandler.group)
            tuning(&consumer)
            return StreamConsumer(
                postgres: app.consumerPostgres, redis: app.redis, handler: handler, configuration: consumer, logger: logger, clock: clock)
        }
    }

    /// Applies to the ledger the events of `stream:booking` and `stream:payments` that its consumers
    /// never received (Redis failed over to a lagging replica, lost its last second of AOF, or was
    /// restored from a snapshot): without it a lost `booking.confirmed` would never pay its host, and
    /// a lost `refund.succeeded` would pay the host for money that went back to the customer.
    func ledgerReconcilers(logger: Logger) -> [OutboxReconciler<LedgerHandler>] {
        let handler = ledgerHandler
        return LedgerHandler.streams.map { stream in
            OutboxReconciler(
                postgres: app.consumerPostgres, handler: handler, configuration: .init(stream: stream, group: LedgerHandler.group), logger: logger,
                clock: clock)
        }
    }

    /// Transfers: consumer group `payout-transfers` on `stream:payout`.
    func transferConsumer(
        logger: Logger, tuning: (inout StreamConsumer<TransferWorker>.Configuration) -> Void = { _ in }
    ) -> StreamConsumer<TransferWorker> {
        var consumer = StreamConsumer<TransferWorker>.Configuration(stream: Streams.stream(for: .payout), group: TransferWorker.group)
        tuning(&consumer)
        return StreamConsumer(
            postgres: app.consumerPostgres, redis: app.redis, handler: TransferWorker(transfers: transfers, logger: logger, clock: clock),
            configuration: consumer, logger: logger, clock: clock)
    }

    /// What the service deletes past its retention: its consumers' inbox rows. The ledger, runs and
    /// payouts are the books: kept.
    var retentionRules: [RetentionRule] {
        [.inbox(of: [LedgerHandler.group, TransferWorker.group], retention: configuration.service.inboxRetention)]
    }
}
