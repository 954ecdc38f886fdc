import Foundation
import Postgres
import Redis
import SharedModel

/// The product's invariants as counts over the live database (every service's schema: they share one
/// database) and the Redis streams: `booking check` prints them, `scripts/check-invariants` wraps it and
/// `scripts/bench saga` runs it (`--strict`) after a run. Every count of a `check` must be 0.
///
/// A database in use holds work in flight (a booking waiting for its payment, an outbox row the relay
/// has not published yet, a payment event the saga is applying), so a check that needs the system to
/// have caught up counts only rows older than ``Options/settle`` (or ``Options/outboxBound``) and says
/// so. Checks that read rows a retention sweeper deletes (the outbox after `OUTBOX_RETENTION`, provider
/// deliveries after `PROVIDER_EVENT_RETENTION`) only look at rows that must still be there.
struct InvariantChecks: Sendable {
    /// How a row counts.
    enum Kind: String, Sendable, Codable {
        /// An invariant: the count must be 0.
        case check
        /// Only in `--strict` mode (a finished benchmark run, nothing in flight): what a live database
        /// may legitimately hold (dead letters, ignored deliveries, pending bookings); reported as `info`
        /// otherwise.
        case strict
        /// A size, for context.
        case info
    }

    struct Options: Sendable {
        /// Work younger than this may still be in flight (`--settle`).
        var settle: Duration = .seconds(60)
        /// The longest an outbox row may stay unpublished (`--outbox-bound`).
        var outboxBound: Duration = .seconds(60)
        /// The longest a stream entry may stay delivered and unacknowledged (`--pending-bound`).
        var pendingBound: Duration = .seconds(60)
        /// `OUTBOX_RETENTION`: published outbox rows older than this may have been deleted.
        var outboxRetention: Duration = .seconds(72 * 3600)
        /// `PROVIDER_EVENT_RETENTION`: provider deliveries older than this may have been deleted.
        var providerEventRetention: Duration = .seconds(2880 * 3600)
        /// Count the `strict` rows as checks (a quiescent database that holds one benchmark run only).
        var strict = false
        /// The streams whose consumer groups' pending entries are checked.
        var streams: [String] = InvariantChecks.productStreams
    }

    /// One line of the report.
    struct Result: Sendable, Equatable, Codable {
        let name: String
        let kind: Kind
        let count: Int
        let summary: String

        /// Whether this line is an invariant that is broken (`strict` rows only count in strict mode).
        func violated(strict: Bool) -> Bool {
            count != 0 && (kind == .check || (kind == .strict && strict))
        }
    }

    /// A check over Postgres: its name, what it counts, and the statement returning one count.
    struct SQLCheck: Sendable {
        let name: String
        let kind: Kind
        let summary: String
        let count: PostgresStatement
    }

    /// The name of the Redis check.
    static let streamCheckName = "stream_entry_pending_too_long"

    /// Every service's stream (DESIGN.md, Messaging); their groups are found with `XINFO GROUPS`.
    static let productStreams = ["stream:booking", "stream:payments", "stream:payout", "stream:notification", "stream:dead-letters"]

    let options: Options

    /// Runs every check: the SQL ones in one read-only repeatable-read transaction (one snapshot), then
    /// the stream check when `redis` is given.
    func run(postgres: PostgresClient, redis: RedisClient?) async throws -> [Result] {
        let checks = sqlChecks()
        var results = try await postgres.withTransaction(isolation: .repeatableRead, readOnly: true) { transaction in
            try Self.evaluate(checks, in: transaction)
        }
        if let redis {
            let pending = try await Self.pendingPastBound(redis: redis, streams: options.streams, bound: options.pendingBound)
            results.append(streamResult(pending))
        }
        return results
    }

    /// The stream check's line for `count` entries.
    func streamResult(_ count: Int) -> Result {
        Result(
            name: Self.streamCheckName, kind: .check, count: count,
            summary: "stream entries delivered to a consumer group and unacknowledged longer than --pending-bound (XPENDING IDLE)")
    }

    /// Evaluates `checks` inside `transaction` (the tests plant a violation and check in one transaction).
    static func evaluate(_ checks: [SQLCheck], in transaction: PostgresTransaction) throws -> [Result] {
        try checks.map { check in
            let rows = try transaction.query(check.count)
            let count = try rows.first?.decode(Int64.self, at: 0) ?? 0
            return Result(name: check.name, kind: check.kind, count: Int(count), summary: check.summary)
        }
    }

    /// Entries of every group of `streams` delivered and not acknowledged for longer than `bound`.
    /// A stream that does not exist has no groups.
    static func pendingPastBound(redis: RedisClient, streams: [String], bound: Duration) async throws -> Int {
        var total = 0
        for stream in streams {
            guard try await redis.send("EXISTS", RedisArgument(stream)).integer == 1 else { continue }
            for group in try await redis.xinfoGroups(stream) where group.pending > 0 {
                total += try await redis.xpending(stream, group: group.name, minimumIdle: bound, count: 10_000).count
            }
        }
        return total
    }

    // MARK: The SQL checks

    /// `now()` (the transaction's start) minus `duration`.
    private static func ago(_ duration: Duration) -> PostgresStatement {
        let milliseconds = Int64(max(duration.wholeMilliseconds, 0))
        return "(now() - \(milliseconds)::float8 * interval '1 millisecond')"
    }

    /// Every SQL check, in report order.
    func sqlChecks() -> [SQLCheck] {
        let settled = Self.ago(options.settle)
        let outboxDue = Self.ago(options.outboxBound)
        // Rows a retention sweeper deletes are checked only while they must still exist, with an hour's
        // margin for the services' clocks and the sweeper's schedule (a day for provider deliveries,
        // which may precede a booking's confirmation by the payment grace or a reconciler's delay).
        let outboxKept = Self.ago(max(options.outboxRetention - .seconds(3600), .zero))
        let deliveriesKept = Self.ago(max(options.providerEventRetention - .seconds(86_400), .zero))
        // The steps payouts are rounded down to (the payout service transfers with Stripe's rules).
        let steps = ProviderCurrencyRules.stripe.amountSteps
        let payments: PostgresStatement = """
            (SELECT booking_id, provider_ref, amount, currency, received_at FROM payments.provider_events
             WHERE status = 'accepted' AND domain_event_type = 'payment.succeeded')
            """
        return [
            // Bookings and seats.
            SQLCheck(
                name: "seat_in_two_active_bookings", kind: .check, summary: "seats in two active bookings (invariant 1)",
                count: """
                    SELECT count(*) FROM (
                        SELECT 1 FROM booking.booking_seats WHERE released_at IS NULL GROUP BY event_id, seat_id HAVING count(*) > 1
                    ) AS doubles
                    """),
            SQLCheck(
                name: "booking_without_saga", kind: .check, summary: "bookings without a saga row",
                count: "SELECT count(*) FROM booking.bookings b WHERE NOT EXISTS (SELECT 1 FROM booking.sagas s WHERE s.booking_id = b.booking_id)"
            ),
            SQLCheck(
                name: "saga_state_not_booking_status", kind: .check, summary: "saga state not matching the booking status",
                count: """
                    SELECT count(*) FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
                    WHERE s.state <> 'compensation_failed' AND b.status IS DISTINCT FROM CASE s.state
                        WHEN 'awaiting_payment' THEN 'pending_payment' WHEN 'confirmed' THEN 'confirmed'
                        WHEN 'cancel_requested' THEN 'refund_pending' WHEN 'refund_pending' THEN 'refund_pending'
                        WHEN 'refunded' THEN 'refunded' WHEN 'cancelled' THEN 'cancelled' WHEN 'expired' THEN 'expired' END
                    """),
            SQLCheck(
                name: "booking_amount_not_seat_prices", kind: .check, summary: "bookings whose amount is not the sum of their seats' prices",
                count: """
                    SELECT count(*) FROM booking.bookings b
                    JOIN (SELECT booking_id, sum(price) AS total FROM booking.booking_seats GROUP BY 1) AS s USING (booking_id)
                    WHERE s.total <> b.amount
                    """),
            SQLCheck(
                name: "saga_past_deadline", kind: .check,
                summary: "sagas awaiting a payment or a refund past their deadline by more than --settle",
                count: """
                    SELECT count(*) FROM booking.sagas
                    WHERE state IN ('awaiting_payment', 'cancel_requested', 'refund_pending') AND deadline < \(settled)
                    """),
            SQLCheck(
                name: "confirmed_without_one_saga_step", kind: .check,
                summary: "confirmed bookings without exactly one booking_confirmed saga step",
                count: """
                    SELECT count(*) FROM booking.bookings b WHERE b.status = 'confirmed'
                        AND (SELECT count(*) FROM booking.saga_steps st WHERE st.booking_id = b.booking_id AND st.step = 'booking_confirmed') <> 1
                    """),

            // Payments and refunds.
            SQLCheck(
                name: "confirmed_without_its_payment", kind: .check,
                summary: "confirmed bookings without an accepted payment of their amount, currency and reference",
                count: """
                    SELECT count(*) FROM booking.bookings b
                    WHERE b.confirmed_at IS NOT NULL AND b.confirmed_at > \(deliveriesKept)
                        AND NOT EXISTS (
                            SELECT 1 FROM \(payments) p
                            WHERE p.booking_id = b.booking_id AND p.provider_ref = b.payment_provider_ref
                                AND p.amount = b.amount AND p.currency = b.currency)
                    """),
            SQLCheck(
                name: "payment_neither_confirming_nor_refunded", kind: .check,
                summary: "accepted payments older than --settle that neither confirmed their booking nor have a refund requested",
                count: """
                    SELECT count(*) FROM \(payments) p LEFT JOIN booking.bookings b USING (booking_id)
                    WHERE p.received_at < \(settled)
                        AND NOT (b.confirmed_at IS NOT NULL AND b.payment_provider_ref IS NOT DISTINCT FROM p.provider_ref
                            AND b.amount IS NOT DISTINCT FROM p.amount AND b.currency IS NOT DISTINCT FROM p.currency)
                        AND NOT EXISTS (SELECT 1 FROM booking.refund_requests r WHERE r.provider_ref = p.provider_ref)
                    """),
            SQLCheck(
                name: "refunded_without_succeeded_refund", kind: .check,
                summary: "refunded bookings without a succeeded cancellation refund",
                count: """
                    SELECT count(*) FROM booking.bookings b
                    WHERE b.status = 'refunded' AND NOT EXISTS (
                        SELECT 1 FROM booking.refund_requests r
                        WHERE r.booking_id = b.booking_id AND r.purpose = 'cancellation' AND r.status = 'succeeded')
                    """),
            SQLCheck(
                name: "booking_refunded_twice", kind: .check, summary: "bookings with more than one succeeded cancellation refund",
                count: """
                    SELECT count(*) FROM (
                        SELECT booking_id FROM booking.refund_requests
                        WHERE purpose = 'cancellation' AND status = 'succeeded' AND booking_id IS NOT NULL
                        GROUP BY booking_id HAVING count(*) > 1
                    ) AS twice
                    """),
            SQLCheck(
                name: "partial_refunds_beyond_amount", kind: .check,
                summary: "bookings whose partial refund requests not failed add up to more than the booking's amount",
                count: """
                    SELECT count(*) FROM (
                        SELECT r.booking_id FROM booking.refund_requests r JOIN booking.bookings b ON b.booking_id = r.booking_id
                        WHERE r.purpose = 'partial' AND r.status <> 'failed'
                        GROUP BY r.booking_id, b.amount HAVING sum(r.amount) > b.amount
                    ) AS beyond
                    """),
            SQLCheck(
                name: "payment_refunded_beyond_amount", kind: .check,
                summary: "payments whose succeeded refunds (or refunds the provider accepted) exceed what was paid",
                count: """
                    WITH paid AS (
                        SELECT provider_ref, max(amount) AS amount FROM (
                            SELECT provider_ref, amount FROM \(payments) AS p
                            UNION ALL
                            SELECT provider_ref, amount FROM payments.payment_intents
                        ) AS known GROUP BY provider_ref
                    ),
                    asked AS (
                        SELECT provider_ref, sum(amount) AS amount FROM booking.refund_requests WHERE status = 'succeeded' GROUP BY 1
                    ),
                    made AS (
                        SELECT provider_ref, sum(amount) AS amount FROM (
                            SELECT DISTINCT ON (provider_refund_id) provider_ref, amount FROM payments.refunds
                            WHERE outcome = 'accepted' ORDER BY provider_refund_id
                        ) AS distinct_refunds GROUP BY 1
                    )
                    SELECT count(*) FROM paid
                    LEFT JOIN asked USING (provider_ref) LEFT JOIN made USING (provider_ref)
                    WHERE greatest(coalesce(asked.amount, 0), coalesce(made.amount, 0)) > paid.amount
                    """),

            // Booking events in the outbox.
            SQLCheck(
                name: "confirmed_without_one_confirmed_event", kind: .check,
                summary: "bookings confirmed within OUTBOX_RETENTION without exactly one booking.confirmed in the outbox",
                count: """
                    SELECT count(*) FROM booking.bookings b
                    LEFT JOIN (
                        SELECT aggregate_id, count(*) AS n FROM messaging.outbox
                        WHERE producer = 'booking' AND event_type = 'booking.confirmed' GROUP BY aggregate_id
                    ) AS e ON e.aggregate_id = b.booking_id::text
                    WHERE b.confirmed_at IS NOT NULL AND b.confirmed_at > \(outboxKept) AND coalesce(e.n, 0) <> 1
                    """),
            SQLCheck(
                name: "confirmed_event_without_confirmation", kind: .check,
                summary: "booking.confirmed events of bookings never confirmed",
                count: """
                    SELECT count(*) FROM messaging.outbox o LEFT JOIN booking.bookings b ON b.booking_id::text = o.aggregate_id
                    WHERE o.producer = 'booking' AND o.event_type = 'booking.confirmed' AND b.confirmed_at IS NULL
                    """),
            SQLCheck(
                name: "confirmed_event_amount_differs", kind: .check,
                summary: "booking.confirmed events whose amount or currency differs from the booking's",
                count: """
                    SELECT count(*) FROM messaging.outbox o JOIN booking.bookings b ON b.booking_id::text = o.aggregate_id
                    WHERE o.producer = 'booking' AND o.event_type = 'booking.confirmed'
                        AND ((o.envelope -> 'data' ->> 'amount')::bigint IS DISTINCT FROM b.amount
                            OR o.envelope -> 'data' ->> 'currency' IS DISTINCT FROM b.currency)
                    """),

            // Webhooks: a 2xx is answered only after the delivery's row (and, when accepted, its event) committed.
            SQLCheck(
                name: "accepted_delivery_without_event", kind: .check,
                summary: "accepted provider deliveries within OUTBOX_RETENTION without their domain event in the outbox",
                count: """
                    SELECT count(*) FROM payments.provider_events pe
                    WHERE pe.status = 'accepted' AND pe.received_at > \(outboxKept)
                        AND NOT EXISTS (
                            SELECT 1 FROM messaging.outbox o
                            WHERE o.event_id = pe.domain_event_id AND o.event_type = pe.domain_event_type AND o.producer = 'payments-webhook')
                    """),
            SQLCheck(
                name: "delivery_event_without_delivery", kind: .check,
                summary: "payment events caused by a provider delivery that has no accepted delivery row",
                count: """
                    SELECT count(*) FROM messaging.outbox o
                    WHERE o.producer = 'payments-webhook'
                        AND (o.envelope ->> 'causation_id' LIKE 'stripe:%' OR o.envelope ->> 'causation_id' LIKE 'internal:%')
                        AND NOT EXISTS (
                            SELECT 1 FROM payments.provider_events pe WHERE pe.status = 'accepted' AND pe.domain_event_id = o.event_id)
                    """),
            SQLCheck(
                name: "payment_event_not_applied", kind: .check,
                summary: "payment.succeeded events older than --settle the saga (booking-saga) neither applied nor dead-lettered",
                count: """
                    SELECT count(*) FROM messaging.outbox o
                    WHERE o.event_type = 'payment.succeeded' AND o.created_at < \(settled)
                        AND NOT EXISTS (SELECT 1 FROM messaging.inbox i WHERE i.consumer = 'booking-saga' AND i.event_id = o.event_id)
                        AND NOT EXISTS (
                            SELECT 1 FROM messaging.dead_letters d WHERE d.consumer = 'booking-saga' AND d.event_id = o.event_id)
                    """),

            // Messaging.
            SQLCheck(
                name: "outbox_unpublished_too_long", kind: .check, summary: "outbox rows unpublished for longer than --outbox-bound",
                count: "SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL AND created_at < \(outboxDue)"),
            SQLCheck(
                name: "handler_attempts_stalled", kind: .check,
                summary: "handler retries (messaging.attempts) with no attempt for longer than --settle, neither applied nor dead-lettered",
                count: """
                    SELECT count(*) FROM messaging.attempts a
                    WHERE a.last_attempt_at < \(settled)
                        AND NOT EXISTS (SELECT 1 FROM messaging.inbox i WHERE i.consumer = a.consumer AND i.event_id = a.event_id)
                    """),
            SQLCheck(
                name: "dead_letter_without_reason", kind: .check, summary: "dead letters with an empty error",
                count: "SELECT count(*) FROM messaging.dead_letters WHERE btrim(error) = ''"),

            // Payouts.
            SQLCheck(
                name: "entry_in_two_live_payouts", kind: .check,
                summary: "ledger entries in two live payout items (payout not failed, item not released; invariant 3)",
                count: """
                    SELECT count(*) FROM (
                        SELECT i.entry_id FROM payout.payout_items i JOIN payout.payouts p ON p.id = i.payout_id
                        WHERE NOT i.released AND p.status <> 'failed'
                        GROUP BY i.entry_id HAVING count(*) > 1
                    ) AS twice
                    """),
            SQLCheck(
                name: "payout_not_its_items", kind: .check,
                summary: "payouts (of runs not failed) whose amount or item count is not their items' entries",
                count: """
                    SELECT count(*) FROM payout.payouts p JOIN payout.runs r ON r.id = p.run_id
                    LEFT JOIN (
                        SELECT i.payout_id, count(*) AS items, coalesce(sum(e.amount), 0) AS total
                        FROM payout.payout_items i LEFT JOIN payout.entries e ON e.id = i.entry_id
                        GROUP BY i.payout_id
                    ) AS s ON s.payout_id = p.id
                    WHERE r.status <> 'failed' AND (s.total IS DISTINCT FROM p.amount OR s.items IS DISTINCT FROM p.item_count::bigint)
                    """),
            SQLCheck(
                name: "lost_dispute_not_debited", kind: .check,
                summary: "lost disputes of bookings in the ledger without their debit (a dispute entry of the disputed amount)",
                count: """
                    SELECT count(*) FROM payout.disputes d
                    WHERE d.status = 'lost' AND EXISTS (SELECT 1 FROM payout.bookings b WHERE b.booking_id = d.booking_id)
                      AND NOT EXISTS (
                          SELECT 1 FROM payout.entries e
                          WHERE e.source_event_id = d.closed_event_id AND e.kind = 'dispute' AND e.amount = -d.amount)
                    """),
            SQLCheck(
                name: "payout_not_transferable", kind: .check,
                summary: "payouts not failed whose amount is not a multiple of the provider's step in their currency (KWD: 10, MGA: 100)",
                count: """
                    SELECT count(*) FROM payout.payouts p
                    JOIN unnest(\(steps.map(\.currency))::text[], \(steps.map(\.step))::bigint[]) AS s (currency, step)
                      ON s.currency = p.currency::text
                    WHERE p.status <> 'failed' AND p.amount % s.step <> 0
                    """),
            SQLCheck(
                name: "rounding_rest_unpaired", kind: .check,
                summary: "rests held back by a payout (`rounding`) without the same amount carried (`rounding_carried`), or the reverse",
                count: """
                    SELECT count(*) FROM payout.entries r
                    WHERE r.kind IN ('rounding', 'rounding_carried')
                      AND NOT EXISTS (
                          SELECT 1 FROM payout.entries c
                          WHERE c.source_event_id = r.source_event_id AND c.kind IN ('rounding', 'rounding_carried') AND c.kind <> r.kind
                            AND c.amount = -r.amount)
                    """),
            SQLCheck(
                name: "failed_payout_items_not_released", kind: .check,
                summary: "items of failed payouts not released (their entries cannot be paid again)",
                count: """
                    SELECT count(*) FROM payout.payout_items i JOIN payout.payouts p ON p.id = i.payout_id
                    WHERE p.status = 'failed' AND NOT i.released
                    """),

            // What a finished benchmark run must not hold, and a live database may.
            SQLCheck(
                name: "accepted_payment_amount_differs", kind: .strict,
                summary: "accepted payments whose amount or currency differs from their booking's",
                count: """
                    SELECT count(*) FROM \(payments) p JOIN booking.bookings b USING (booking_id)
                    WHERE p.amount <> b.amount OR p.currency <> b.currency
                    """),
            SQLCheck(
                name: "accepted_payment_booking_not_confirmed", kind: .strict, summary: "accepted payments whose booking is not confirmed",
                count: """
                    SELECT count(*) FROM \(payments) p LEFT JOIN booking.bookings b USING (booking_id)
                    WHERE b.status IS DISTINCT FROM 'confirmed'
                    """),
            SQLCheck(
                name: "bookings_pending_payment", kind: .strict, summary: "bookings still pending payment",
                count: "SELECT count(*) FROM booking.bookings WHERE status = 'pending_payment'"),
            SQLCheck(
                name: "review_dead_letters", kind: .strict, summary: "review dead letters",
                count: "SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'"),
            SQLCheck(
                name: "failure_dead_letters", kind: .strict, summary: "failure dead letters",
                count: "SELECT count(*) FROM messaging.dead_letters WHERE kind = 'failure'"),
            SQLCheck(
                name: "handler_attempts_left", kind: .strict, summary: "handler attempts left over (failed, not yet succeeded)",
                count: "SELECT count(*) FROM messaging.attempts"),
            SQLCheck(
                name: "outbox_unpublished", kind: .strict, summary: "outbox rows not published",
                count: "SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL"),
            SQLCheck(
                name: "unaccepted_deliveries", kind: .strict, summary: "malformed or ignored deliveries",
                count: "SELECT count(*) FROM payments.provider_events WHERE status <> 'accepted'"),

            // Sizes.
            SQLCheck(name: "bookings", kind: .info, summary: "bookings", count: "SELECT count(*) FROM booking.bookings"),
            SQLCheck(
                name: "confirmed_bookings", kind: .info, summary: "confirmed bookings",
                count: "SELECT count(*) FROM booking.bookings WHERE status = 'confirmed'"),
            SQLCheck(
                name: "active_booking_seats", kind: .info, summary: "active booking seats",
                count: "SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL"),
            SQLCheck(
                name: "accepted_payments", kind: .info, summary: "accepted payment deliveries (payment.succeeded)",
                count: "SELECT count(*) FROM \(payments) AS p"),
            SQLCheck(
                name: "confirmed_events", kind: .info, summary: "booking.confirmed events in the outbox",
                count: "SELECT count(*) FROM messaging.outbox WHERE producer = 'booking' AND event_type = 'booking.confirmed'"),
            SQLCheck(name: "outbox_rows", kind: .info, summary: "outbox rows (all producers)", count: "SELECT count(*) FROM messaging.outbox"),
            SQLCheck(
                name: "open_dead_letters", kind: .info, summary: "open dead letters",
                count: "SELECT count(*) FROM messaging.dead_letters WHERE status = 'open'"),
        ]
    }
}
