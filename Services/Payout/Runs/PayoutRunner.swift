import Foundation
import Logging
import Messaging
import Metrics
import Postgres
import SharedModel
import Synchronization

/// Creates a date's run (or finds it) and works it to `completed` or `failed`, under one advisory lock
/// for the whole platform: however many processes start runs (`payout run`, the API, the schedule of
/// N replicas), one works at a time and the others wait or leave it to it.
///
/// Every step commits on its own and can be repeated: planning is one transaction; each batch of hosts
/// is one statement in one transaction, marked done with it; reconciliation and each group of
/// announcements likewise. A runner killed at any point leaves the run resumable from its phase, and
/// the database refuses anything twice (one run per date, one line and payout per host and currency of
/// a run, one live item per entry, one done row per batch).
struct PayoutRunner: Sendable {
    /// The advisory lock of payout runs (`payout` in ASCII, then 1).
    static let lockKey: Int64 = 0x7061_796F_7574_0001
    /// Payouts announced per transaction.
    static let announceBatch = 250

    /// What a runner reports as it goes.
    enum Progress: Sendable {
        /// Another runner holds the lock; this one waits.
        case waiting
        /// The run is computing: `done` of `total` host balances.
        case computing(run: PayoutRun, done: Int, total: Int)
        /// The run finished (completed or failed).
        case finished(PayoutRun)
    }

    /// The run's id is unknown.
    struct UnknownRun: Error {}

    /// The runner's session changed under it (a reconnect): the lock went with the old one.
    struct LostLock: Error, CustomStringConvertible {
        var description: String { "the connection holding the payout run lock was lost; run again to continue" }
    }

    let postgres: PostgresClient
    let settings: RunSettings
    let clock: WallClock
    let logger: Logger
    /// Called after the batches are computed and before reconciliation (tests inject mismatches here).
    var beforeReconciliation: @Sendable (UUID) async throws -> Void = { _ in }

    /// `payout_reconciliation_failures_total` and `payout_runs_total{status}` (runs this process finished),
    /// registered at zero when the runner is made.
    let reconciliationFailures = Counter(label: "payout_reconciliation_failures_total")
    let runsFinished = Dictionary(
        uniqueKeysWithValues: [PayoutRun.Status.completed, .failed].map {
            ($0, Counter(label: "payout_runs_total", dimensions: [("status", $0.rawValue)]))
        })

    /// The run of `date` (today in `PAYOUT_TIME_ZONE` when nil), created now unless it exists. Its cut-off
    /// is the end of the date or now, whichever is earlier. A date after today throws ``RunDate/Problem/future(today:)``.
    /// `audit`, when given, is written in the same transaction: target the run's id, outcome `created`
    /// or `existing` (an HTTP status 202 or 200 to match).
    func start(_ date: RunDate?, audit: AuditRecord? = nil) async throws -> (run: PayoutRun, created: Bool) {
        let now = clock.now()
        let date = date ?? RunDate(containing: now, in: settings.timeZone)
        try date.checkNotFuture(now: now, in: settings.timeZone)
        let cutoff = min(now, date.end(in: settings.timeZone))
        let settledBefore = cutoff.subtracting(settings.settlementDelay)
        let clock = self.clock
        let outcome = try await postgres.withTransaction { transaction in
            let outcome = try PayoutRunStore.createOrFind(date: date, cutoff: cutoff, settledBefore: settledBefore, now: now, in: transaction)
            if var record = audit {
                record.targetID = outcome.run.id.lowercasedString
                record.outcome = outcome.created ? "created" : "existing"
                if record.httpStatus != nil { record.httpStatus = outcome.created ? 202 : 200 }
                record.details = ["run_date": .string(date.description), "cutoff": .string(RFC3339.string(from: cutoff))]
                try AuditLog.record(record, clock: clock, in: transaction)
            }
            return outcome
        }
        if outcome.created {
            logger.info(
                "payout run created",
                metadata: [
                    "run_id": "\(outcome.run.id.lowercasedString)", "run_date": "\(date)", "cutoff": "\(RFC3339.string(from: cutoff))",
                ])
        }
        return outcome
    }

    /// Works the run until it is finished and returns it; with `waiting`, first waits for a runner
    /// holding the lock, otherwise returns nil when one does (it will finish the run).
    func finish(_ runID: UUID, waiting: Bool, progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> PayoutRun? {
        try await postgres.withConnection { connection in
            while try await !(connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))")[0].decode(Bool.self, at: 0)) {
                guard waiting else { return nil }
                progress(.waiting)
                try await Task.sleep(for: .seconds(1))
            }
            let session = await connection.backendPID
            let outcome: Result<PayoutRun, any Error>
            do {
                outcome = .success(try await work(runID, on: connection, session: session, progress: progress))
            } catch {
                outcome = .failure(error)
            }
            // After a reconnect the lock went with the old session; unlocking then is a harmless no-op.
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
            return try outcome.get()
        }
    }

    private func work(
        _ runID: UUID, on connection: PostgresConnection, session: Int32?, progress: @escaping @Sendable (Progress) -> Void
    ) async throws -> PayoutRun {
        var metadata: Logger.Metadata = ["run_id": "\(runID.lowercasedString)"]
        // Whether this runner moved the run (not merely found it finished).
        var worked = false
        while true {
            try Task.checkCancellation()
            guard await connection.backendPID == session else { throw LostLock() }
            guard let run = try await connection.withTransaction({ try PayoutRunStore.run(runID, in: $0) }) else { throw UnknownRun() }
            metadata["run_date"] = "\(run.runDate)"
            worked = worked || run.phase != .done
            let now = clock.now()
            switch run.phase {
            case .planning:
                let batchHosts = settings.batchHosts
                try await connection.withTransaction { try PayoutRunStore.plan(runID, batchHosts: batchHosts, now: now, in: $0) }
                // Fresh statistics for what the batches join and write by the million (autovacuum would
                // analyze them only after the run): with stale ones a batch's join was planned as if its
                // hosts had no rows, and took several times longer (measured: 6 s instead of 1.2 s).
                try await connection.query(PayoutRunStore.analyzePlan)
            case .computing:
                try await compute(run, on: connection, session: session, progress: progress, metadata: metadata)
            case .reconciling:
                try await beforeReconciliation(runID)
                let mismatches = try await connection.withTransaction { transaction in
                    let mismatches = try PayoutRunStore.reconcile(runID, in: transaction)
                    if mismatches.isEmpty {
                        try PayoutRunStore.reconciled(runID, in: transaction)
                    } else {
                        try PayoutRunStore.fail(runID, mismatches: mismatches, now: now, in: transaction)
                    }
                    return mismatches
                }
                if !mismatches.isEmpty {
                    reconciliationFailures.increment()
                    logger.error(
                        "payout run failed reconciliation: nothing was paid and its entries stay payable",
                        metadata: metadata.merging(["mismatches": "\(mismatches.count)", "first": "\(mismatches[0].detail)"]) { $1 })
                }
            case .publishing:
                try await announce(run, on: connection, now: now)
            case .done:
                progress(.finished(run))
                if worked {
                    runsFinished[run.status]?.increment()
                    logger.info("payout run finished", metadata: metadata.merging(["status": "\(run.status.rawValue)"]) { $1 })
                }
                return run
            }
        }
    }

    /// Computes the run's pending batches on `settings.connections` connections at once: the lock's own
    /// and, when the pool has them, more leased for the computation (batches cover separate hosts, so
    /// they never touch the same rows). Every worker checks before each batch that the lock's session
    /// is still the one that took it.
    private func compute(
        _ run: PayoutRun, on connection: PostgresConnection, session: Int32?, progress: @escaping @Sendable (Progress) -> Void,
        metadata: Logger.Metadata
    ) async throws {
        let runID = run.id
        let (pending, alreadyDone) = try await connection.withTransaction { transaction in
            (try PayoutRunStore.pendingBatches(of: runID, in: transaction), try PayoutRunStore.hostsDone(of: runID, in: transaction))
        }
        let queue = BatchQueue(batches: pending, done: alreadyDone)
        progress(.computing(run: run, done: alreadyDone, total: run.hostCount))
        let work: @Sendable (PostgresConnection) async throws -> Void = { worker in
            while let batch = queue.next() {
                try Task.checkCancellation()
                guard await connection.backendPID == session else { throw LostLock() }
                let now = clock.now()
                let written = try await worker.withTransaction { try PayoutRunStore.compute(runID, batch: batch, now: now, in: $0) }
                let done = queue.finished(lines: written.lines)
                logger.debug(
                    "payout batch computed",
                    metadata: metadata.merging(["batch": "\(batch)", "lines": "\(written.lines)", "payouts": "\(written.payouts)"]) { $1 })
                progress(.computing(run: run, done: done, total: run.hostCount))
            }
        }
        let helpers = min(settings.connections, pending.count) - 1
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(0, helpers) {
                group.addTask { [postgres] in try await postgres.withConnection { try await work($0) } }
            }
            group.addTask { try await work(connection) }
            try await group.waitForAll()
        }
        try await connection.withTransaction { try PayoutRunStore.finishComputing(runID, in: $0) }
        try await connection.query(PayoutRunStore.analyzeComputed)
    }

    /// Announces the run's payouts (`payout.created` through the outbox, which starts their transfers),
    /// a group per transaction, then completes the run.
    private func announce(_ run: PayoutRun, on connection: PostgresConnection, now: Date) async throws {
        let runID = run.id
        let correlationID = "payout-run-\(runID.lowercasedString)"
        while true {
            try Task.checkCancellation()
            let announced = try await connection.withTransaction { transaction in
                let payouts = try PayoutRunStore.unannounced(of: runID, limit: Self.announceBatch, in: transaction)
                guard !payouts.isEmpty else {
                    try PayoutRunStore.complete(runID, now: now, in: transaction)
                    return 0
                }
                let drafts = try payouts.map { payout in
                    try EventEnvelope(
                        event: PayoutCreated(payout: payout), occurredAt: now, sequence: 0, correlationID: correlationID, causationID: nil,
                        producer: .payout)
                }
                try Outbox.enqueue(drafts: drafts, after: [PayoutRunStore.announced(payouts.map(\.payoutID), at: now)], in: transaction)
                return payouts.count
            }
            if announced == 0 { return }
        }
    }
}

/// The batches a run's workers take one at a time, and the host balances they finished.
private final class BatchQueue: Sendable {
    private struct State {
        var batches: [Int]
        var done: Int
    }

    private let state: Mutex<State>

    init(batches: [Int], done: Int) {
        state = Mutex(State(batches: batches.reversed(), done: done))
    }

    /// The next batch, in order; nil when none is left.
    func next() -> Int? { state.withLock { $0.batches.popLast() } }

    /// Counts a finished batch's lines; returns the host balances done so far.
    func finished(lines: Int) -> Int {
        state.withLock { state in
            state.done += lines
            return state.done
        }
    }
}
