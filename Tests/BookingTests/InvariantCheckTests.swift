import Foundation
import Postgres
import Redis
import ServiceTestSupport
import TestSupport
import Testing

@testable import Booking

/// `booking check` (``InvariantChecks``) on fresh migrated databases: an empty one, a consistent one
/// with rows like the services write, and that consistent one with one violation planted per check.
@Suite("Invariant checker: every check is 0 on consistent data and detects its own violation")
struct InvariantCheckTests {
    /// Options whose stream check looks only at a stream of this test (the shared Redis serves every suite).
    static func options(stream: String) -> InvariantChecks.Options {
        var options = InvariantChecks.Options()
        options.streams = [stream]
        return options
    }

    @Test("an empty migrated database: every check, strict row and size is 0")
    func emptyDatabase() async throws {
        let url = try await ServiceHarness.migratedDatabase(prefix: "check_empty")
        let postgres = try TestDatabase.client(url: url, connections: 2)
        let redis = try RedisClient.forTests(connections: 2)
        let results = try await InvariantChecks(options: Self.options(stream: "stream:check-\(UUID())")).run(postgres: postgres, redis: redis)
        await postgres.shutdown()
        await redis.shutdown()
        #expect(results.filter { $0.count != 0 }.map(\.name) == [])
        #expect(results.contains { $0.name == InvariantChecks.streamCheckName })
        #expect(Set(results.map(\.name)).count == results.count)
    }

    @Test("consistent rows (confirmed, refunded, pending, expired-and-refunded bookings, a paid payout): every check is 0")
    func consistentDatabase() async throws {
        let fixture = try await Fixture.make()
        let results = try await InvariantChecks(options: Self.options(stream: "stream:check-\(UUID())")).run(
            postgres: fixture.postgres, redis: nil)
        await fixture.postgres.shutdown()
        #expect(results.filter { $0.violated(strict: false) }.map(\.name) == [])
        let counts = Dictionary(uniqueKeysWithValues: results.map { ($0.name, $0.count) })
        #expect(counts["bookings"] == 4)
        #expect(counts["confirmed_bookings"] == 1)
        #expect(counts["accepted_payments"] == 3)
        // What a live database may hold and a finished benchmark run may not: a pending booking, a
        // review dead letter, payments of bookings no longer (or never) confirmed.
        #expect(counts["bookings_pending_payment"] == 1)
        #expect(counts["review_dead_letters"] == 1)
        #expect(counts["accepted_payment_booking_not_confirmed"] == 2)
    }

    @Test("one planted violation per check: exactly that check reports it (rolled back after each)")
    func plantedViolations() async throws {
        let fixture = try await Fixture.make()
        let checks = InvariantChecks(options: InvariantChecks.Options()).sqlChecks()
        let baseline = try await fixture.postgres.withTransaction { transaction in try InvariantChecks.evaluate(checks, in: transaction) }
        let baseCounts = Dictionary(uniqueKeysWithValues: baseline.map { ($0.name, $0.count) })
        let plants = fixture.plants()
        // Every check and every strict row has its plant.
        #expect(Set(plants.map(\.check)) == Set(checks.filter { $0.kind != .info }.map(\.name)))
        for plant in plants {
            let results: [InvariantChecks.Result]
            do {
                try await fixture.postgres.withTransaction { transaction in
                    for statement in plant.statements { try transaction.query(statement) }
                    throw Planted(results: try InvariantChecks.evaluate(checks, in: transaction))
                }
                Issue.record("\(plant.check): the plant did not roll back")
                continue
            } catch let planted as Planted {
                results = planted.results
            }
            let target = try #require(results.first { $0.name == plant.check }, "\(plant.check)")
            #expect(target.count > baseCounts[plant.check, default: 0], "\(plant.check) did not detect its violation")
            let otherViolations = results.filter { $0.kind == .check && $0.count != 0 && $0.name != plant.check }.map(\.name)
            #expect(otherViolations == [], "planting \(plant.check) also broke \(otherViolations)")
        }
        // Nothing of the plants stayed.
        let after = try await fixture.postgres.withTransaction { transaction in try InvariantChecks.evaluate(checks, in: transaction) }
        #expect(after == baseline)
        await fixture.postgres.shutdown()
    }

    @Test("stream entries pending longer than --pending-bound are counted per group; acknowledged ones are not")
    func pendingStreamEntries() async throws {
        let redis = try RedisClient.forTests(connections: 2)
        let stream = "stream:check-\(UUID())"
        _ = try await redis.createGroup("check-group", on: stream, startingAt: "$")
        _ = try await redis.createGroup("idle-group", on: stream, startingAt: "$")
        let id = try await redis.xadd(stream, fields: [("envelope", Array("{}".utf8))])
        _ = try await redis.send(["XREADGROUP", "GROUP", "check-group", "consumer-1", "COUNT", "10", "STREAMS", RedisArgument(stream), ">"])
        try await Task.sleep(for: .milliseconds(50))
        let pending = try await InvariantChecks.pendingPastBound(
            redis: redis, streams: [stream, "stream:check-absent-\(UUID())"], bound: .milliseconds(20))
        let withinBound = try await InvariantChecks.pendingPastBound(redis: redis, streams: [stream], bound: .seconds(60))
        _ = try await redis.xack(stream, group: "check-group", ids: [id])
        let acknowledged = try await InvariantChecks.pendingPastBound(redis: redis, streams: [stream], bound: .milliseconds(20))
        _ = try await redis.send("DEL", RedisArgument(stream))
        await redis.shutdown()
        #expect(pending == 1)
        #expect(withinBound == 0)
        #expect(acknowledged == 0)
    }

    @Test("the booking executable: exit 0 and a table on consistent data, 1 and JSON naming the violation, 2 without DATABASE_URL")
    func executable() async throws {
        let fixture = try await Fixture.make()
        let binary = try TestEnvironment.binDirectory() + "/booking"
        let redisURL = try TestEnvironment.redisURL()
        let stream = "stream:check-\(UUID())"
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = nil
        environment["REDIS_URL"] = nil
        func check(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (ChildProcess.Termination, String) {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID()).out").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let child = try ChildProcess(
                executable: binary, arguments: ["check"] + arguments, environment: environment.merging(extra) { $1 }, outputPath: path)
            let termination = try #require(await child.termination(within: .seconds(60)))
            return (termination, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
        }
        let (ok, table) = try await check(["--redis-url", redisURL, "--streams", stream], environment: ["DATABASE_URL": fixture.url])
        #expect(ok == .exited(0), "\(table)")
        #expect(table.contains("seat_in_two_active_bookings"))
        #expect(table.contains("checks OK"))
        #expect(!table.contains("VIOLATION"))

        try await fixture.postgres.query(
            """
            INSERT INTO messaging.dead_letters (id, kind, stream, consumer, event_id, event_type, aggregate_id, envelope, error, attempts,
                first_failed_at, last_failed_at)
            VALUES (\(UUID()), 'failure', 'stream:payments', 'notification', \(UUID()), 'payment.succeeded', 'x', '{}', '', 8, now(), now())
            """)
        await fixture.postgres.shutdown()
        let (violated, json) = try await check(
            ["--database-url", fixture.url, "--redis-url", redisURL, "--streams", stream, "--json"])
        #expect(violated == .exited(1), "\(json)")
        let line = try #require(json.split(separator: "\n").last { $0.hasPrefix("{") })
        let document = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(document["ok"] as? Bool == false)
        #expect(document["violations"] as? Int == 1)
        let lines = try #require(document["checks"] as? [[String: Any]])
        let broken = lines.filter { $0["status"] as? String == "VIOLATION" }.compactMap { $0["name"] as? String }
        #expect(broken == ["dead_letter_without_reason"])

        let (unconfigured, message) = try await check(["--redis-url", redisURL])
        #expect(unconfigured == .exited(2))
        #expect(message.contains("DATABASE_URL"))
    }
}

/// Carries a transaction's results out of it while rolling it back.
private struct Planted: Error {
    let results: [InvariantChecks.Result]
}

/// One violation: the check that must report it and the statements that plant it.
struct Plant: Sendable {
    let check: String
    let statements: [PostgresStatement]
}

/// A migrated database holding what the services write for: a confirmed and paid booking (with its
/// payout, paid), a refunded one, a pending one, an expired one whose late payment was refunded (with
/// its review dead letter).
struct Fixture {
    let url: String
    let postgres: PostgresClient
    let event = UUID()
    let confirmed = UUID()
    let refunded = UUID()
    let pending = UUID()
    let expired = UUID()
    let confirmedPayment = UUID()
    let run = UUID()
    let payout = UUID()

    static func make() async throws -> Fixture {
        let url = try await ServiceHarness.migratedDatabase(prefix: "check")
        let fixture = Fixture(url: url, postgres: try TestDatabase.client(url: url, connections: 2))
        try await fixture.postgres.withTransaction { transaction in
            for statement in fixture.seed() { try transaction.query(statement) }
        }
        return fixture
    }

    /// A booking with its seat, saga (and step) as the saga writes them; `confirmed` also adds its
    /// `booking.confirmed` event.
    func booking(
        _ id: UUID, seat: String, price: Int64, status: String, saga: String, ref: String?, deadline: String = "NULL",
        confirmed: Bool, released: Bool, age: String = "2 hours"
    ) -> [PostgresStatement] {
        var statements: [PostgresStatement] = [
            """
            INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at,
                payment_provider_ref, created_at, confirmed_at, updated_at)
            VALUES (\(id), \(event), 'cus_1', \(UUID()), \(status), \(price), 'EUR', now() - \(age)::interval + interval '15 minutes',
                \(ref), now() - \(age)::interval, CASE WHEN \(confirmed) THEN now() - \(age)::interval + interval '1 minute' END, now())
            """,
            """
            INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price, released_at)
            VALUES (\(id), \(event), \(seat), \(price), CASE WHEN \(released) THEN now() END)
            """,
            """
            INSERT INTO booking.sagas (booking_id, state, version, deadline, created_at, updated_at)
            VALUES (\(id), \(saga), 3, \(unescaped: deadline), now() - \(age)::interval, now())
            """,
        ]
        if confirmed {
            statements += [
                """
                INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, from_state, to_state, occurred_at)
                VALUES (\(id), 'booking_confirmed', 'forward', 'succeeded', 'awaiting_payment', 'confirmed', now() - \(age)::interval)
                """,
                outbox(
                    UUID(), producer: "booking", type: "booking.confirmed", aggregate: id.uuidString.lowercased(),
                    data: #"{"amount": \#(price), "currency": "EUR"}"#, causation: nil),
            ]
        }
        return statements
    }

    /// An outbox row, published an hour ago.
    func outbox(
        _ id: UUID, producer: String, type: String, aggregate: String, data: String, causation: String?,
        created: String = "now() - interval '1 hour'",
        published: String = "now() - interval '1 hour'"
    ) -> PostgresStatement {
        let stream = producer == "booking" ? "stream:booking" : "stream:payments"
        return """
            INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope, created_at, published_at)
            VALUES (\(id), \(stream), \(producer), \(aggregate), 1, \(type),
                jsonb_build_object('id', \(id.uuidString.lowercased()), 'type', \(type), 'causation_id', \(causation)::text,
                    'producer', \(producer), 'data', \(data)::jsonb),
                \(unescaped: created), \(unescaped: published))
            """
    }

    /// An accepted `payment.succeeded` delivery, its domain event in the outbox and the saga's inbox row.
    func payment(booking: UUID, ref: String, amount: Int64, domainEvent: UUID = UUID(), received: String = "2 hours") -> [PostgresStatement] {
        let providerEventID = "evt_\(UUID().uuidString.prefix(8))"
        return [
            """
            INSERT INTO payments.provider_events (id, provider, provider_event_id, event_type, status, booking_id, provider_ref, amount,
                currency, domain_event_id, domain_event_type, raw_body, body_sha256, signed_at, received_at)
            VALUES (\(UUID()), 'stripe', \(providerEventID), 'payment_intent.succeeded', 'accepted', \(booking), \(ref), \(amount), 'EUR',
                \(domainEvent), 'payment.succeeded', '\\x7b7d', sha256('\\x7b7d'), now() - \(received)::interval, now() - \(received)::interval)
            """,
            outbox(
                domainEvent, producer: "payments-webhook", type: "payment.succeeded", aggregate: booking.uuidString.lowercased(),
                data: #"{"amount": \#(amount), "currency": "EUR"}"#, causation: "stripe:\(providerEventID)",
                created: "now() - interval '\(received)'"),
            "INSERT INTO messaging.inbox (consumer, event_id) VALUES ('booking-saga', \(domainEvent))",
        ]
    }

    /// A refund the saga asked for and the provider made.
    func refund(booking: UUID, ref: String, amount: Int64, purpose: String, status: String) -> [PostgresStatement] {
        let refundID = UUID()
        return [
            """
            INSERT INTO booking.refund_requests (refund_id, booking_id, purpose, reason, provider_ref, amount, currency, idempotency_key, status,
                requested_at, completed_at)
            VALUES (\(refundID), \(booking), \(purpose), 'test', \(ref), \(amount), 'EUR', \("refund-\(refundID)"), \(status), now() - interval '90 minutes',
                now() - interval '80 minutes')
            """,
            """
            INSERT INTO payments.refunds (refund_id, booking_id, provider, provider_ref, provider_refund_id, amount, currency, idempotency_key,
                outcome, requested_at)
            VALUES (\(refundID), \(booking), 'stripe', \(ref), \("re_\(refundID.uuidString.prefix(8))"), \(amount), 'EUR', \("refund-\(refundID)"),
                'accepted', now() - interval '90 minutes')
            """,
        ]
    }

    func deadLetter(kind: String, error: String) -> PostgresStatement {
        """
        INSERT INTO messaging.dead_letters (id, kind, stream, consumer, event_id, event_type, aggregate_id, envelope, error, attempts,
            first_failed_at, last_failed_at)
        VALUES (\(UUID()), \(kind), 'stream:payments', 'booking-saga', \(UUID()), 'payment.succeeded', \(expired.uuidString.lowercased()),
            '{}', \(error), 1, now() - interval '1 hour', now() - interval '1 hour')
        """
    }

    func seed() -> [PostgresStatement] {
        var statements: [PostgresStatement] = [
            """
            INSERT INTO booking.events (event_id, name, host_id, starts_at, ends_at, time_zone, currency, created_at)
            VALUES (\(event), 'Gig', 'host_1', now() - interval '1 day', now() - interval '20 hours', 'UTC', 'EUR', now() - interval '3 days')
            """,
            """
            INSERT INTO booking.seats (event_id, seat_id, price, position)
            VALUES (\(event), 'A1', 2500, 0), (\(event), 'A2', 2000, 1), (\(event), 'A3', 1500, 2), (\(event), 'A4', 1000, 3),
                   (\(event), 'A5', 500, 4)
            """,
        ]
        statements += booking(
            confirmed, seat: "A1", price: 2500, status: "confirmed", saga: "confirmed", ref: "pi_1", confirmed: true, released: false)
        statements += payment(booking: confirmed, ref: "pi_1", amount: 2500, domainEvent: confirmedPayment)
        statements.append(
            "INSERT INTO payments.payment_intents VALUES (\(confirmed), 'stripe', 'pi_1', 2500, 'EUR', 'pay-1', now() - interval '2 hours')")
        statements += booking(refunded, seat: "A2", price: 2000, status: "refunded", saga: "refunded", ref: "pi_2", confirmed: true, released: true)
        statements += payment(booking: refunded, ref: "pi_2", amount: 2000)
        statements += refund(booking: refunded, ref: "pi_2", amount: 2000, purpose: "cancellation", status: "succeeded")
        statements += booking(
            pending, seat: "A3", price: 1500, status: "pending_payment", saga: "awaiting_payment", ref: "pi_3",
            deadline: "now() + interval '17 minutes'", confirmed: false, released: false, age: "1 minute")
        statements += booking(expired, seat: "A4", price: 1000, status: "expired", saga: "expired", ref: "pi_4", confirmed: false, released: true)
        // Paid after it expired: refunded (compensation) and reviewed.
        statements += payment(booking: expired, ref: "pi_4", amount: 1000)
        statements += refund(booking: expired, ref: "pi_4", amount: 1000, purpose: "compensation", status: "succeeded")
        statements.append(deadLetter(kind: "review", error: "late_payment: paid after the booking expired"))
        // The confirmed booking's ledger entries, paid out by a completed run.
        statements += [
            """
            INSERT INTO payout.entries (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
            VALUES ('host_1', 'EUR', \(confirmed), 'revenue', 2500, \(UUID()), now() - interval '2 hours', now() - interval '20 hours', now()),
                   ('host_1', 'EUR', \(confirmed), 'fee', -250, \(UUID()), now() - interval '2 hours', now() - interval '20 hours', now())
            """,
            """
            INSERT INTO payout.runs (id, run_date, cutoff, settled_before, status, phase, host_count, batch_count, created_at, started_at, completed_at)
            VALUES (\(run), current_date, now(), now(), 'completed', 'done', 1, 1, now(), now(), now())
            """,
            """
            INSERT INTO payout.payouts (id, run_id, host_id, currency, amount, destination, status, provider_ref, announced_at, item_count,
                item_bookings, item_revenue, item_fees, item_refunds, item_fee_reversals, created_at, paid_at)
            VALUES (\(payout), \(run), 'host_1', 'EUR', 2250, 'acct_1', 'paid', 'tr_1', now(), 2, 1, 2500, 250, 0, 0, now(), now())
            """,
            "INSERT INTO payout.payout_items (payout_id, entry_id) SELECT \(payout), id FROM payout.entries WHERE booking_id = \(confirmed)",
        ]
        return statements
    }

    /// One plant per check and strict row.
    func plants() -> [Plant] {
        let stranger = UUID()
        let secondPayout = UUID()
        return [
            Plant(
                check: "seat_in_two_active_bookings",
                statements: [
                    "DROP INDEX booking.booking_seats_active_once",
                    "INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price) VALUES (\(pending), \(event), 'A1', 0)",
                ]),
            Plant(
                check: "booking_without_saga",
                statements: [
                    """
                    INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at,
                        created_at, updated_at)
                    VALUES (\(stranger), \(event), 'cus_2', \(UUID()), 'cancelled', 0, 'EUR', now(), now(), now())
                    """
                ]),
            Plant(check: "saga_state_not_booking_status", statements: ["UPDATE booking.sagas SET state = 'expired' WHERE booking_id = \(pending)"]),
            Plant(check: "booking_amount_not_seat_prices", statements: ["UPDATE booking.bookings SET amount = 999 WHERE booking_id = \(pending)"]),
            Plant(
                check: "saga_past_deadline",
                statements: ["UPDATE booking.sagas SET deadline = now() - interval '10 minutes' WHERE booking_id = \(pending)"]),
            Plant(
                check: "confirmed_without_one_saga_step",
                statements: ["DELETE FROM booking.saga_steps WHERE booking_id = \(confirmed) AND step = 'booking_confirmed'"]),
            Plant(
                check: "confirmed_without_its_payment",
                statements: booking(
                    stranger, seat: "A5", price: 500, status: "confirmed", saga: "confirmed", ref: "pi_5", confirmed: true, released: false)
            ),
            Plant(check: "payment_neither_confirming_nor_refunded", statements: payment(booking: stranger, ref: "pi_9", amount: 700)),
            Plant(
                check: "refunded_without_succeeded_refund",
                statements: ["UPDATE booking.refund_requests SET status = 'failed' WHERE booking_id = \(refunded)"]),
            Plant(
                check: "booking_refunded_twice",
                statements: refund(booking: refunded, ref: "pi_2", amount: 0, purpose: "cancellation", status: "succeeded")),
            Plant(
                check: "partial_refunds_beyond_amount",
                statements: [1_500, 1_500].map { amount -> PostgresStatement in
                    // Two partial refunds of the confirmed booking (2,500), still requested: 3,000 asked.
                    let refundID = UUID()
                    return """
                        INSERT INTO booking.refund_requests (refund_id, booking_id, purpose, reason, provider_ref, amount, currency, idempotency_key,
                            status, requested_at)
                        VALUES (\(refundID), \(confirmed), 'partial', 'goodwill', 'pi_1', \(Int64(amount)), 'EUR', \("refund-\(refundID)"), 'requested',
                            now())
                        """
                }),
            Plant(
                check: "payment_refunded_beyond_amount",
                statements: [
                    """
                    INSERT INTO payments.refunds (refund_id, booking_id, provider, provider_ref, provider_refund_id, amount, currency,
                        idempotency_key, outcome, requested_at)
                    VALUES (\(UUID()), \(confirmed), 'stripe', 'pi_1', 're_extra', 3000, 'EUR', 'refund-extra', 'accepted', now())
                    """
                ]),
            Plant(
                check: "confirmed_without_one_confirmed_event",
                statements: [
                    "DELETE FROM messaging.outbox WHERE event_type = 'booking.confirmed' AND aggregate_id = \(confirmed.uuidString.lowercased())"
                ]),
            Plant(
                check: "confirmed_event_without_confirmation",
                statements: [
                    outbox(
                        UUID(), producer: "booking", type: "booking.confirmed", aggregate: pending.uuidString.lowercased(),
                        data: #"{"amount": 1500, "currency": "EUR"}"#, causation: nil)
                ]),
            Plant(
                check: "confirmed_event_amount_differs",
                statements: [
                    """
                    UPDATE messaging.outbox SET envelope = jsonb_set(envelope, '{data,amount}', '999')
                    WHERE event_type = 'booking.confirmed' AND aggregate_id = \(confirmed.uuidString.lowercased())
                    """
                ]),
            Plant(
                check: "accepted_delivery_without_event", statements: ["DELETE FROM messaging.outbox WHERE event_id = \(confirmedPayment)"]),
            Plant(
                check: "delivery_event_without_delivery",
                statements: [
                    // A payment event that says a delivery caused it, without that delivery's row.
                    outbox(
                        UUID(), producer: "payments-webhook", type: "payment.failed", aggregate: pending.uuidString.lowercased(),
                        data: #"{"final": false}"#, causation: "stripe:evt_ghost")
                ]),
            Plant(
                check: "payment_event_not_applied",
                statements: ["DELETE FROM messaging.inbox WHERE consumer = 'booking-saga' AND event_id = \(confirmedPayment)"]),
            Plant(
                check: "outbox_unpublished_too_long",
                statements: [
                    outbox(
                        UUID(), producer: "booking", type: "booking.requested", aggregate: pending.uuidString.lowercased(), data: "{}",
                        causation: nil, created: "now() - interval '10 minutes'", published: "NULL")
                ]),
            Plant(
                check: "handler_attempts_stalled",
                statements: [
                    """
                    INSERT INTO messaging.attempts (consumer, event_id, attempts, last_error, first_attempt_at, last_attempt_at)
                    VALUES ('notification', \(UUID()), 3, 'boom', now() - interval '20 minutes', now() - interval '10 minutes')
                    """
                ]),
            Plant(check: "dead_letter_without_reason", statements: [deadLetter(kind: "failure", error: " ")]),
            Plant(
                check: "entry_in_two_live_payouts",
                statements: [
                    "DROP INDEX payout.payout_items_entry_once",
                    """
                    INSERT INTO payout.payouts (id, run_id, host_id, currency, amount, destination, status, item_count, item_bookings,
                        item_revenue, item_fees, item_refunds, item_fee_reversals, created_at)
                    VALUES (\(secondPayout), \(run), 'host_2', 'EUR', 2500, 'acct_2', 'pending', 1, 1, 2500, 0, 0, 0, now())
                    """,
                    """
                    INSERT INTO payout.payout_items (payout_id, entry_id)
                    SELECT \(secondPayout), id FROM payout.entries WHERE booking_id = \(confirmed) AND kind = 'revenue'
                    """,
                ]),
            Plant(check: "payout_not_its_items", statements: ["UPDATE payout.payouts SET amount = 2300 WHERE id = \(payout)"]),
            Plant(
                check: "lost_dispute_not_debited",
                statements: [
                    """
                    INSERT INTO payout.bookings (booking_id, host_id, currency, amount, fee, fee_bps, event_ends_at, confirmed_at)
                    VALUES (\(confirmed), 'host_1', 'EUR', 2500, 250, 1000, now() - interval '20 hours', now() - interval '2 hours')
                    """,
                    """
                    INSERT INTO payout.disputes (provider, dispute_ref, booking_id, closed_event_id, currency, amount, status, opened_at, closed_at)
                    VALUES ('stripe', 'dp_1', \(confirmed), \(UUID()), 'EUR', 2500, 'lost', now() - interval '1 hour', now())
                    """,
                ]),
            Plant(
                check: "payout_not_transferable",
                statements: [
                    // The paid payout, in KWD and 5 fils more, with its fee entry 5 fils less: still the sum of its items.
                    "UPDATE payout.entries SET amount = -245 WHERE booking_id = \(confirmed) AND kind = 'fee'",
                    "UPDATE payout.payouts SET currency = 'KWD', amount = 2255 WHERE id = \(payout)",
                ]),
            Plant(
                check: "rounding_rest_unpaired",
                statements: [
                    """
                    INSERT INTO payout.entries (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
                    VALUES ('host_1', 'KWD', NULL, 'rounding_carried', 5, \(UUID()), now(), NULL, now())
                    """
                ]),
            Plant(
                check: "failed_payout_items_not_released",
                statements: [
                    """
                    UPDATE payout.payouts SET status = 'failed', failed_at = now(), error = 'refused', paid_at = NULL, provider_ref = NULL
                    WHERE id = \(payout)
                    """
                ]),
            // Strict rows: what a finished benchmark run must not hold.
            Plant(
                check: "accepted_payment_amount_differs",
                statements: ["UPDATE payments.provider_events SET currency = 'USD' WHERE provider_ref = 'pi_4'"]),
            Plant(
                check: "accepted_payment_booking_not_confirmed",
                statements: payment(booking: pending, ref: "pi_3", amount: 1500, received: "1 second")),
            Plant(
                check: "bookings_pending_payment",
                statements: booking(
                    stranger, seat: "A5", price: 500, status: "pending_payment", saga: "awaiting_payment", ref: nil,
                    deadline: "now() + interval '17 minutes'", confirmed: false, released: false, age: "1 minute")),
            Plant(check: "review_dead_letters", statements: [deadLetter(kind: "review", error: "duplicate_payment")]),
            Plant(check: "failure_dead_letters", statements: [deadLetter(kind: "failure", error: "timed out")]),
            Plant(
                check: "handler_attempts_left",
                statements: [
                    "INSERT INTO messaging.attempts (consumer, event_id, attempts, last_error) VALUES ('notification', \(UUID()), 1, 'boom')"
                ]),
            Plant(
                check: "outbox_unpublished",
                statements: [
                    outbox(
                        UUID(), producer: "booking", type: "booking.requested", aggregate: pending.uuidString.lowercased(), data: "{}",
                        causation: nil, created: "now()", published: "NULL")
                ]),
            Plant(
                check: "unaccepted_deliveries",
                statements: [
                    """
                    INSERT INTO payments.provider_events (id, provider, provider_event_id, event_type, status, raw_body, body_sha256, signed_at,
                        received_at)
                    VALUES (\(UUID()), 'stripe', 'evt_ignored', 'customer.created', 'ignored', '\\x7b7d', sha256('\\x7b7d'), now(), now())
                    """
                ]),
        ]
    }
}
