import Synchronization

/// Group commit: requests submitted while a batch is being committed wait, and then go together in
/// the next batch, so concurrent callers share transactions (and their fsyncs) instead of queueing
/// for connections one transaction each. A lone request is committed at once. At most `batchSize`
/// requests per batch and `concurrentBatches` batches in flight; a batch beside another only when at
/// least half a batch waits for it. So at a moderate rate one batch commits at a time and
/// what arrives meanwhile goes in the next, and only a queue that one batch at a time would not keep
/// up with gets more: four batches always at hand made a moderate rate's batches small and its
/// commits many (docs/performance.md, "Webhooks: one batch at a time until the queue grows").
///
/// Each caller gets its own outcome once its batch committed. A batch that fails is retried one
/// request at a time, so a request is answered with its own error, never with another's; unless
/// `retriesAlone` says the error is not the requests' own (the database is unreachable): then every
/// request of the batch gets it at once, rather than each waiting out the same outage in turn.
final class GroupCommit<Request: Sendable, Outcome: Sendable>: Sendable {
    typealias Commit = @Sendable ([Request]) async throws -> [Outcome]

    private struct Waiting {
        let request: Request
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var committing = 0
    }

    private let state = Mutex(State())
    private let batchSize: Int
    private let concurrentBatches: Int
    /// Half a batch: what must wait before a batch goes beside another.
    private let anotherBatchAt: Int
    private let commit: Commit
    private let retriesAlone: @Sendable (any Error) -> Bool

    init(
        batchSize: Int, concurrentBatches: Int, retriesAlone: @escaping @Sendable (any Error) -> Bool = { _ in true },
        commit: @escaping Commit
    ) {
        precondition(batchSize > 0 && concurrentBatches > 0, "a group commit needs room for one request")
        self.batchSize = batchSize
        self.concurrentBatches = concurrentBatches
        self.anotherBatchAt = max(1, batchSize / 2)
        self.commit = commit
        self.retriesAlone = retriesAlone
    }

    /// Commits `request` with whatever else is waiting; returns its outcome.
    func submit(_ request: Request) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let startsCommitter = state.withLock { state -> Bool in
                state.queue.append(Waiting(request: request, continuation: continuation))
                guard state.committing == 0 || (state.committing < concurrentBatches && state.queue.count >= anotherBatchAt) else { return false }
                state.committing += 1
                return true
            }
            // Not tied to the caller's task: once taken, a request is committed whatever happens to its caller.
            if startsCommitter { Task { await self.commitWhileWaiting() } }
        }
    }

    /// Commits batches until nothing waits, or, beside another committer, until fewer than
    /// `anotherBatchAt` requests wait (the other takes them: a request never waits without a committer).
    private func commitWhileWaiting() async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                if state.queue.isEmpty || (state.committing > 1 && state.queue.count < anotherBatchAt) {
                    state.committing -= 1
                    return []
                }
                let batch = Array(state.queue.prefix(batchSize))
                state.queue.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let outcomes = try await commit(batch.map(\.request))
                guard outcomes.count == batch.count else {
                    throw GroupCommitError(description: "a batch of \(batch.count) came back with \(outcomes.count) outcomes")
                }
                for (waiting, outcome) in zip(batch, outcomes) { waiting.continuation.resume(returning: outcome) }
            } catch {
                guard batch.count > 1, retriesAlone(error) else {
                    for waiting in batch { waiting.continuation.resume(throwing: error) }
                    continue
                }
                for waiting in batch {
                    do {
                        let outcome = try await commit([waiting.request])
                        guard outcome.count == 1 else { throw GroupCommitError(description: "one request came back with \(outcome.count) outcomes") }
                        waiting.continuation.resume(returning: outcome[0])
                    } catch {
                        waiting.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }
}

struct GroupCommitError: Error, CustomStringConvertible {
    let description: String
}
