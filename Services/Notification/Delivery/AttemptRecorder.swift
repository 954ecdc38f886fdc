import Foundation
import Logging
import Messaging
import SharedModel

/// Writes finished attempts for the dispatcher, many to a transaction (group commit): each attempt's
/// task hands its record over and waits until it is committed, while one writer loop takes whatever
/// has queued up (at most `batchSize`) and commits it in one transaction, so at a high rate a commit's
/// WAL flush is shared by many attempts instead of paid by each.
///
/// A batch that fails is written record by record, each tried up to 3 times; a record that still
/// fails is left: its lease runs out and the delivery is sent again (at worst a duplicate, never a loss).
final class AttemptRecorder: Sendable {
    private struct Waiting: Sendable {
        let record: AttemptRecord
        let done: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var queue: [Waiting] = []
        var finishing = false
    }

    private let repository: DeliveryRepository
    private let clock: WallClock
    private let logger: Logger
    private let batchSize: Int
    private let state = Synchronized(State())
    private let doorbell = Doorbell()

    init(repository: DeliveryRepository, clock: WallClock, logger: Logger, batchSize: Int = 256) {
        self.repository = repository
        self.clock = clock
        self.logger = logger
        self.batchSize = batchSize
    }

    /// Queues `record` and returns once it is committed (true) or given up (false).
    func record(_ record: AttemptRecord) async -> Bool {
        await withCheckedContinuation { continuation in
            state.withLock { $0.queue.append(Waiting(record: record, done: continuation)) }
            doorbell.ring()
        }
    }

    /// Ends ``run()`` once everything queued so far is written.
    func finish() {
        state.withLock { $0.finishing = true }
        doorbell.ring()
    }

    /// The writer loop; returns after ``finish()`` when the queue is empty.
    func run() async {
        while true {
            let (batch, finishing) = state.withLock { state -> ([Waiting], Bool) in
                let batch = Array(state.queue.prefix(batchSize))
                state.queue.removeFirst(batch.count)
                return (batch, state.finishing)
            }
            if batch.isEmpty {
                if finishing || Task.isCancelled { return }
                // Every record and finish() rings; the timeout only bounds a missed ring.
                await doorbell.wait(upTo: .seconds(1))
                continue
            }
            await write(batch)
        }
    }

    private func write(_ batch: [Waiting]) async {
        do {
            try await repository.record(batch.map(\.record), clock: clock)
            for waiting in batch { waiting.done.resume(returning: true) }
            return
        } catch {
            logger.warning(
                "could not record a batch of attempts; recording them one by one", metadata: ["attempts": "\(batch.count)", "error": "\(error)"])
        }
        for waiting in batch {
            var written = false
            for attempt in 1...3 where !written {
                do {
                    try await repository.record([waiting.record], clock: clock)
                    written = true
                } catch {
                    logger.warning(
                        "could not record an attempt; its delivery is sent again when its lease runs out",
                        metadata: ["delivery_id": "\(waiting.record.delivery.id)", "try": "\(attempt)", "error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(100 * attempt))
                }
            }
            waiting.done.resume(returning: written)
        }
    }
}
