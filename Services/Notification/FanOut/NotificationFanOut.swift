import Foundation
import Messaging
import Postgres
import SharedModel

/// The consumer group `notification` on every stream (`stream:booking`, `stream:payments`,
/// `stream:payout`, `stream:notification`, `stream:dead-letters`): turns each deliverable event into
/// one pending delivery per enabled endpoint subscribed to its type, in the transaction that writes
/// the event's inbox row, so a redelivered event creates nothing twice.
///
/// - The event is stored once in `notification.events`, byte for byte as it will be sent (the
///   envelope's JSON), and is the source of later replays.
/// - Endpoints created after the event occurred do not get it (replay reaches back further);
///   paused and disabled endpoints get nothing.
/// - A `dead_letter.recorded` about a delivery that failed to an endpoint is not delivered to that
///   same endpoint: it would fail there too, and each failure would announce another one.
/// - After the commit the dispatcher is woken, so a new delivery goes out at once, not at its next poll.
struct NotificationFanOut: TransactionalStreamHandler {
    static let group = "notification"
    static let streams = [Streams.booking, Streams.payments, Streams.payout, Streams.stream(for: .notification), Streams.deadLetters]

    let clock: WallClock
    let wake: @Sendable () -> Void

    func apply(_ envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        guard EventTypeFilter.isDeliverable(envelope.type) else { return }
        let eventID = envelope.id.uuid
        let body = try envelope.jsonData()
        let now = clock.now()
        var excluded: UUID?
        if envelope.type == DeadLetterRecorded.eventType, let recorded = try? envelope.decode(DeadLetterRecorded.self) {
            excluded = DeliveryFailureDeadLetter.endpoint(ofConsumer: recorded.consumer)
        }
        try transaction.pipeline([
            """
            INSERT INTO notification.events (event_id, event_type, producer, aggregate_id, sequence, occurred_at, body, received_at)
            VALUES (\(eventID), \(envelope.type), \(envelope.producer.rawValue), \(envelope.aggregateID), \(envelope.sequence),
                    \(envelope.occurredAt), \(body), \(now))
            ON CONFLICT (event_id) DO NOTHING
            """,
            """
            INSERT INTO notification.deliveries
                (id, endpoint_id, event_id, event_type, producer, aggregate_id, sequence, origin, status, next_attempt_at, created_at)
            SELECT messaging.uuid_v7(), e.id, \(eventID), \(envelope.type), \(envelope.producer.rawValue), \(envelope.aggregateID),
                   \(envelope.sequence), 'event', 'pending', \(now), \(now)
            FROM notification.endpoints e
            WHERE e.status = 'enabled' AND e.created_at <= \(envelope.occurredAt) AND e.id IS DISTINCT FROM \(excluded)
              AND \(EndpointSubscriptionSQL.matches(type: "\(envelope.type)", subscriptions: "e.event_types"))
            """,
        ])
    }

    func committed(_ envelopes: [EventEnvelope]) {
        if envelopes.contains(where: { EventTypeFilter.isDeliverable($0.type) }) { wake() }
    }
}

/// ``EventTypeFilter/matches(_:subscriptions:)`` in SQL: `type` is a text expression (a bound value
/// or a column), `subscriptions` a `text[]` expression.
enum EndpointSubscriptionSQL {
    static func matches(type: PostgresStatement, subscriptions: PostgresStatement) -> PostgresStatement {
        """
        (cardinality(\(subscriptions)::text[]) = 0 OR \(type) = ANY(\(subscriptions)::text[]) OR '*' = ANY(\(subscriptions)::text[])
         OR EXISTS (SELECT 1 FROM unnest(\(subscriptions)::text[]) AS pattern
                    WHERE right(pattern, 2) = '.*' AND starts_with(\(type), left(pattern, -1))))
        """
    }
}
