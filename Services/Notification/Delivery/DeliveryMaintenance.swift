import Foundation
import Logging
import Messaging
import Metrics
import Postgres
import ServiceLifecycle
import SharedModel
import Synchronization

/// The dispatcher's background duties:
///
/// - every 2 s, queues again the failed deliveries whose dead letters an operator replayed (from the
///   API or any service's `dlq replay`), and wakes the dispatcher when there were any;
/// - every 15 s, refreshes the gauges `notification_pending_deliveries{endpoint}`,
///   `notification_oldest_pending_seconds{endpoint}` (age of the oldest pending delivery) and
///   `notification_endpoints{status}`.
struct DeliveryMaintenance: Service {
    let repository: DeliveryRepository
    let clock: WallClock
    let logger: Logger
    let wake: @Sendable () -> Void
    private let reported = Synchronized<Set<UUID>>([])

    init(repository: DeliveryRepository, clock: WallClock, logger: Logger, wake: @escaping @Sendable () -> Void) {
        self.repository = repository
        self.clock = clock
        self.logger = logger
        self.wake = wake
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await repeatUntilShutdown(every: .seconds(2), logger: logger, failure: "could not queue replayed deliveries") {
                    let count = try await repository.requeueReplayedDeadLetters(now: clock.now())
                    if count > 0 {
                        logger.info("replayed dead letters queued their deliveries again", metadata: ["deliveries": "\(count)"])
                        wake()
                    }
                }
            }
            group.addTask {
                await repeatUntilShutdown(every: .seconds(15), logger: logger, failure: "could not refresh the delivery gauges") {
                    try await refreshGauges()
                }
            }
        }
    }

    func refreshGauges() async throws {
        let snapshot = try await repository.gauges(now: clock.now())
        for (status, count) in snapshot.endpointsByStatus {
            Gauge(label: "notification_endpoints", dimensions: [("status", status.rawValue)]).record(count)
        }
        let current = Set(snapshot.pending.keys)
        let gone = reported.withLock { reported in
            defer { reported = current }
            return reported.subtracting(current)
        }
        for endpoint in gone {
            let dimensions = [("endpoint", endpoint.lowercasedString)]
            Gauge(label: "notification_pending_deliveries", dimensions: dimensions).record(0)
            Gauge(label: "notification_oldest_pending_seconds", dimensions: dimensions).record(0)
        }
        for (endpoint, pending) in snapshot.pending {
            let dimensions = [("endpoint", endpoint.lowercasedString)]
            Gauge(label: "notification_pending_deliveries", dimensions: dimensions).record(pending.count)
            Gauge(label: "notification_oldest_pending_seconds", dimensions: dimensions).record(pending.oldestAge.timeInterval)
        }
    }
}

extension DeliveryRepository {
    struct Gauges: Sendable {
        var pending: [UUID: (count: Int, oldestAge: Duration)] = [:]
        var endpointsByStatus: [EndpointStatus: Int] = [:]
    }

    func gauges(now: Date) async throws -> Gauges {
        try await postgres.withTransaction(readOnly: true) { transaction in
            var gauges = Gauges()
            for status in EndpointStatus.allCases { gauges.endpointsByStatus[status] = 0 }
            for row in try transaction.query("SELECT status, count(*) FROM notification.endpoints GROUP BY status") {
                if let status = EndpointStatus(rawValue: try row.decode(String.self, at: 0)) {
                    gauges.endpointsByStatus[status] = Int(try row.decode(Int64.self, at: 1))
                }
            }
            for row in try transaction.query(
                "SELECT endpoint_id, count(*), min(created_at) FROM notification.deliveries WHERE status = 'pending' GROUP BY endpoint_id")
            {
                let oldest = try row.decode(Date.self, at: 2)
                gauges.pending[try row.decode(UUID.self, at: 0)] = (
                    Int(try row.decode(Int64.self, at: 1)), Duration(timeInterval: max(0, now.timeIntervalSince(oldest)))
                )
            }
            return gauges
        }
    }
}
