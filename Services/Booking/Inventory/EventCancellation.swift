import Foundation
import Logging
import Messaging
import Metrics
import Postgres
import ServiceLifecycle
import SharedModel

/// Where an event's cancellation stands (`cancellation` of `GET /v1/events/{id}`).
struct EventCancellationStatus: Sendable, Equatable {
    let reason: String
    let cancelledBy: String
    let cancelledAt: Date
    /// When the last of its bookings left `pending_payment` / `confirmed` (nil: still working).
    let completedAt: Date?
    /// Bookings awaiting payment or confirmed when the cancellation committed.
    let bookingsTotal: Int
    /// Of the event's bookings, those still awaiting payment or confirmed: the work left.
    let bookingsRemaining: Int
    /// The event's cancellation refunds by status (`requested`, `succeeded`, `failed`).
    let refundsRequested: Int
    let refundsSucceeded: Int
    let refundsFailed: Int

    /// Bookings the cancellation has cancelled (or that left the two states on their own meanwhile).
    var bookingsDone: Int { max(0, bookingsTotal - bookingsRemaining) }
}

/// Cancelling a whole event (issue 18 item 1): marking it, and then cancelling its bookings in bounded
/// batches through the saga (a booking awaiting payment is `cancelled` with its seats released; a
/// confirmed one goes `cancel_requested` -> `refund_pending` with a full refund, whatever the 24 h
/// policy says).
struct EventCancellationStore: Sendable {
    let postgres: PostgresClient
    let runner: SagaRunner

    enum CancelOutcome: Sendable, Equatable {
        /// Marked now; `event.cancelled` is in the outbox.
        case cancelled(EventCancellationStatus)
        /// Cancelled before (the reason given then stands); nothing changed.
        case alreadyCancelled(EventCancellationStatus)
        case notFound
        /// The event is over: nothing is left to cancel (its payouts may already be made).
        case ended(endsAt: Date)
    }

    /// Marks `event` cancelled, with `audit` and `event.cancelled` in the same transaction. The row is
    /// locked `FOR UPDATE` first: that waits for bookings being inserted (each insert locks the row
    /// `FOR KEY SHARE`, see migration 0012) and makes every later insert see the mark, so the count of
    /// bookings to cancel taken here is final.
    func cancel(
        _ event: EventID, reason: String, operatorName: String, correlationID: String, audit: AuditRecord?, at now: Date
    ) async throws
        -> CancelOutcome
    {
        enum Marked: Sendable, Equatable {
            case notFound, ended(Date), already, marked
        }
        let marked: Marked = try await postgres.withTransaction { transaction in
            let rows = try transaction.query(
                "SELECT host_id, ends_at, cancelled_at FROM booking.events WHERE event_id = \(event.uuid) FOR UPDATE")
            guard let row = rows.first else { return .notFound }
            if try row.decode(Date?.self, at: 2) != nil { return .already }
            let endsAt = try row.decode(Date.self, at: 1)
            guard now < endsAt else { return .ended(endsAt) }
            let host = try HostID(parsing: try row.decode(String.self, at: 0))
            let active = try transaction.query(
                """
                SELECT count(*) FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
                WHERE b.event_id = \(event.uuid) AND s.state IN ('awaiting_payment', 'confirmed')
                """)[0].decode(Int.self, at: 0)
            try Outbox.append(
                [EventCancelled(eventID: event, hostID: host, reason: reason, cancelledAt: now, bookings: active)],
                after: [
                    """
                    UPDATE booking.events SET cancelled_at = \(now), cancel_reason = \(reason), cancelled_by = \(operatorName),
                        cancellation_bookings = \(Int32(clamping: active)),
                        cancellation_completed_at = CASE WHEN \(Int32(clamping: active)) = 0 THEN \(now)::timestamptz END
                    WHERE event_id = \(event.uuid)
                    """
                ],
                producer: .booking, correlationID: correlationID, occurredAt: now, in: transaction)
            try AuditLog.record(audit?.with(details: ["reason": .string(reason), "bookings": .integer(Int64(active))]), in: transaction)
            return .marked
        }
        switch marked {
        case .notFound: return .notFound
        case .ended(let endsAt): return .ended(endsAt: endsAt)
        case .already, .marked:
            guard let status = try await status(of: event) else { return .notFound }
            return marked == .marked ? .cancelled(status) : .alreadyCancelled(status)
        }
    }

    /// The cancellation of `event`, or nil when it is not cancelled (or does not exist).
    func status(of event: EventID) async throws -> EventCancellationStatus? {
        let results = try await postgres.pipeline([
            """
            SELECT cancel_reason, cancelled_by, cancelled_at, cancellation_completed_at, cancellation_bookings
            FROM booking.events WHERE event_id = \(event.uuid) AND cancelled_at IS NOT NULL
            """,
            """
            SELECT count(*) FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
            WHERE b.event_id = \(event.uuid) AND s.state IN ('awaiting_payment', 'confirmed')
            """,
            """
            SELECT count(*) FILTER (WHERE r.status = 'requested'), count(*) FILTER (WHERE r.status = 'succeeded'),
                   count(*) FILTER (WHERE r.status = 'failed')
            FROM booking.bookings b JOIN booking.refund_requests r USING (booking_id)
            WHERE b.event_id = \(event.uuid) AND r.reason = \(RefundReason.eventCancellation.rawValue)
            """,
        ])
        guard let row = results[0].first else { return nil }
        let refunds = results[2][0]
        return EventCancellationStatus(
            reason: try row.decode(String.self, at: 0), cancelledBy: try row.decode(String?.self, at: 1) ?? "admin",
            cancelledAt: try row.decode(Date.self, at: 2), completedAt: try row.decode(Date?.self, at: 3),
            bookingsTotal: Int(try row.decode(Int32.self, at: 4)), bookingsRemaining: try results[1][0].decode(Int.self, at: 0),
            refundsRequested: try refunds.decode(Int.self, at: 0), refundsSucceeded: try refunds.decode(Int.self, at: 1),
            refundsFailed: try refunds.decode(Int.self, at: 2))
    }

    /// Whether `event` is cancelled (false also when it does not exist).
    func isCancelled(_ event: EventID) async throws -> Bool {
        try await !postgres.sharedQuery("SELECT 1 FROM booking.events WHERE event_id = \(event.uuid) AND cancelled_at IS NOT NULL").isEmpty
    }

    /// Cancellations still working, oldest first.
    func open(limit: Int = 100) async throws -> [EventID] {
        try await postgres.query(
            """
            SELECT event_id FROM booking.events WHERE cancelled_at IS NOT NULL AND cancellation_completed_at IS NULL
            ORDER BY cancelled_at LIMIT \(limit)
            """
        ).map { EventID(try $0.decode(UUID.self, at: 0)) }
    }

    /// What one batch did.
    struct Batch: Sendable {
        /// Bookings taken in this batch (at most the limit).
        var taken = 0
        var cancelled = 0
        var refundsRequested = 0
        var released: [SeatRelease] = []
        var endedReservations: [HeldSeatsReservation] = []
        /// Seconds the transaction took, from its first statement to its commit.
        var seconds = 0.0
        /// The highest booking id the batch looked at: the next batch of the pass starts after it.
        var last: BookingID?
    }

    /// Cancels up to `limit` bookings of `event` still awaiting payment or confirmed, with ids after
    /// `after` (in id order: each batch of a pass reads on from where the last one stopped, through the
    /// `(event_id, booking_id)` index, instead of skipping the bookings already done again), in one
    /// transaction with their outbox events. Bookings another transaction holds (a customer's
    /// cancellation, a payment being applied) are skipped and taken by a later pass.
    func cancelBatch(of event: EventID, after: BookingID? = nil, limit: Int, at now: Date) async throws -> Batch {
        let runner = self.runner
        let started = ContinuousClock.now
        var batch = try await postgres.withTransaction { transaction -> Batch in
            let ids = try transaction.query(
                """
                SELECT b.booking_id FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
                WHERE b.event_id = \(event.uuid) AND b.booking_id > \(after?.uuid ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
                  AND s.state IN ('awaiting_payment', 'confirmed')
                ORDER BY b.booking_id LIMIT \(limit)
                FOR UPDATE OF s SKIP LOCKED
                """
            ).map { BookingID(try $0.decode(UUID.self, at: 0)) }
            var batch = Batch(taken: ids.count, last: ids.last)
            for id in ids {
                let run = try runner.run(
                    .cancellation(.eventCancelled), bookingID: id, cause: .correlated("event-cancel-\(event)"), at: now, in: transaction)
                if run.decision.finalState == .cancelled { batch.cancelled += 1 }
                if run.decision.refundRequest != nil { batch.refundsRequested += 1 }
                if let released = run.released { batch.released.append(released) }
                if let ended = run.endedReservation { batch.endedReservations.append(ended) }
            }
            return batch
        }
        batch.seconds = (ContinuousClock.now - started).timeInterval
        return batch
    }

    /// Marks the cancellation of `event` complete when none of its bookings awaits payment or stands
    /// confirmed any more (a booking locked elsewhere still counts); returns whether it did.
    func completeIfDone(_ event: EventID, at now: Date) async throws -> Bool {
        try await !postgres.query(
            """
            UPDATE booking.events SET cancellation_completed_at = \(now)
            WHERE event_id = \(event.uuid) AND cancelled_at IS NOT NULL AND cancellation_completed_at IS NULL
              AND NOT EXISTS (
                SELECT 1 FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
                WHERE b.event_id = \(event.uuid) AND s.state IN ('awaiting_payment', 'confirmed'))
            RETURNING event_id
            """
        ).isEmpty
    }
}

/// Works through cancelled events' bookings (``EventCancellationStore/cancelBatch(of:limit:at:)``)
/// every `interval`, batch after batch, until none is left; then marks the cancellation complete.
/// Resumable by construction: a crash loses at most the batch in flight (rolled back), and the next
/// pass (of this or any instance) goes on from the bookings still awaiting payment or confirmed.
/// Several instances split the work through `FOR UPDATE SKIP LOCKED`.
struct EventCancellationWorker: Service {
    let store: EventCancellationStore
    let holds: SeatHoldStore
    let logger: Logger
    var clock: WallClock = .system
    var interval: Duration = .seconds(1)
    /// Bookings per transaction (`EVENT_CANCELLATION_BATCH`): small enough that no transaction runs
    /// long (measured in the closing note of issue 18), large enough to amortize the commit.
    var batchSize = 50
    /// Per event being worked on here: batches, bookings and the longest transaction, logged when it completes.
    private let work = Synchronized<[EventID: WorkDone]>([:])
    private struct WorkDone: Sendable {
        var batches = 0
        var bookings = 0
        var refunds = 0
        var longest = 0.0
        var total = 0.0
    }
    let batches = Counter(label: "event_cancellation_batches_total")
    let bookings = Counter(label: "event_cancellation_bookings_total")
    let batchSeconds = Metrics.Timer(label: "event_cancellation_batch_duration_seconds", preferredDisplayUnit: .seconds)

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not work on event cancellations; retrying") {
            try await workOnce()
        }
    }

    /// One pass over every open cancellation: batches until each has no booking left to take.
    /// Returns the bookings taken.
    @discardableResult
    func workOnce() async throws -> Int {
        var total = 0
        for event in try await store.open() {
            var after: BookingID?
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let batch = try await store.cancelBatch(of: event, after: after, limit: batchSize, at: clock.now())
                after = batch.last ?? after
                batches.increment()
                bookings.increment(by: batch.taken)
                batchSeconds.recordSeconds(batch.seconds)
                for release in batch.released { await holds.releaseAfterCommit(release, logger: logger) }
                for ended in batch.endedReservations { await holds.releaseReservationAfterCommit(ended, logger: logger) }
                total += batch.taken
                if batch.taken > 0 {
                    work.withLock { work in
                        var done = work[event] ?? WorkDone()
                        done.batches += 1
                        done.bookings += batch.taken
                        done.refunds += batch.refundsRequested
                        done.longest = max(done.longest, batch.seconds)
                        done.total += batch.seconds
                        work[event] = done
                    }
                    logger.debug(
                        "cancelled a batch of an event's bookings",
                        metadata: [
                            "event_id": "\(event)", "bookings": "\(batch.taken)", "refunds_requested": "\(batch.refundsRequested)",
                            "transaction_ms": "\(Int(batch.seconds * 1000))",
                        ])
                }
                if batch.taken < batchSize { break }
            }
            if try await store.completeIfDone(event, at: clock.now()) {
                let done = work.withLock { $0.removeValue(forKey: event) } ?? WorkDone()
                logger.info(
                    "event cancellation complete: no booking of it awaits payment or stands confirmed",
                    metadata: [
                        "event_id": "\(event)", "bookings": "\(done.bookings)", "refunds_requested": "\(done.refunds)",
                        "batches": "\(done.batches)", "longest_batch_ms": "\(Int((done.longest * 1000).rounded()))",
                        "mean_batch_ms": "\(done.batches == 0 ? 0 : Int((done.total / Double(done.batches) * 1000).rounded()))",
                    ])
            }
        }
        return total
    }
}

/// Which events are cancelled, as the hold route needs it: a cancelled event is remembered for good
/// (a cancellation is final); an event seen not cancelled is asked again after `recheck` (1 s), so a
/// cancellation made through another instance refuses holds here within that time. Bookings need no
/// such window: the database refuses them from the cancellation's commit on (migration 0012).
final class CancelledEvents: Sendable {
    private let store: EventCancellationStore
    private let recheck: Duration
    private enum Known: Sendable {
        case cancelled
        case notCancelled(checkedAt: ContinuousClock.Instant)
    }
    private let known = Synchronized<[EventID: Known]>([:])

    init(store: EventCancellationStore, recheck: Duration = .seconds(1)) {
        self.store = store
        self.recheck = recheck
    }

    func isCancelled(_ event: EventID) async throws -> Bool {
        let now = ContinuousClock.now
        switch known.withLock({ $0[event] }) {
        case .cancelled: return true
        case .notCancelled(let checkedAt) where now - checkedAt < recheck: return false
        default: break
        }
        let cancelled = try await store.isCancelled(event)
        known.withLock { entries in
            if entries.count >= 10_000 { entries.removeAll(keepingCapacity: true) }
            entries[event] = cancelled ? .cancelled : .notCancelled(checkedAt: now)
        }
        return cancelled
    }

    /// Remembers a cancellation made here, so this instance refuses holds at once.
    func remember(_ event: EventID) {
        known.withLock { $0[event] = .cancelled }
    }
}
