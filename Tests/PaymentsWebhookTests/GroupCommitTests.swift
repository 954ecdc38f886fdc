import Foundation
import SharedModel
import Synchronization
import Testing

@testable import PaymentsWebhook

@Suite("Group commit: concurrent stores share transactions, each answered with its own outcome")
struct GroupCommitTests {
    private struct Refused: Error, Equatable { let request: Int }

    /// A group commit of 64 per batch and 4 at once whose commits take `commitTime` and answer each
    /// request with twice its value, recording each batch's size and the most batches in flight at once.
    private final class Recorded: Sendable {
        let batches = Mutex<[Int]>([])
        let inFlight = Mutex((now: 0, most: 0))
        var sizes: [Int] { batches.withLock { $0 } }
        var mostAtOnce: Int { inFlight.withLock { $0.most } }

        func group(commitTime: Duration) -> GroupCommit<Int, Int> {
            GroupCommit<Int, Int>(batchSize: 64, concurrentBatches: 4) { requests in
                self.inFlight.withLock {
                    $0.now += 1; $0.most = max($0.most, $0.now)
                }
                defer { self.inFlight.withLock { $0.now -= 1 } }
                try await Task.sleep(for: commitTime)
                self.batches.withLock { $0.append(requests.count) }
                return requests.map { $0 * 2 }
            }
        }
    }

    @Test("500 concurrent requests: fewer batches than requests, at most 4 at once, every request answered once with its own outcome")
    func batches() async throws {
        let recorded = Recorded()
        let group = recorded.group(commitTime: .milliseconds(5))
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
            for request in 0..<500 { tasks.addTask { (request, try await group.submit(request)) } }
            return try await tasks.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 500)
        #expect(results.allSatisfy { $0.value == $0.key * 2 })
        let sizes = recorded.sizes
        #expect(sizes.reduce(0, +) == 500)
        #expect(sizes.count < 100, "\(sizes.count) batches")
        #expect(sizes.allSatisfy { $0 <= 64 })
        // A burst queues more than half a batch behind the first: further batches go beside it.
        #expect((2...4).contains(recorded.mostAtOnce), "\(recorded.mostAtOnce) batches at once")
    }

    @Test("at a moderate rate one batch commits at a time, and what arrives meanwhile waits for the next instead of a transaction of its own")
    func oneAtATimeUntilTheQueueGrows() async throws {
        let recorded = Recorded()
        let group = recorded.group(commitTime: .milliseconds(20))
        // 60 requests, one every 4 ms, against commits of 20 ms: about 5 arrive during each commit (32
        // would have to queue behind one for a second batch beside it).
        let clock = ContinuousClock()
        var arriving = Duration.zero
        let answered = try await withThrowingTaskGroup(of: Int.self) { tasks in
            let start = clock.now
            for request in 0..<60 {
                tasks.addTask { try await group.submit(request) }
                try await Task.sleep(for: .milliseconds(4))
            }
            arriving = clock.now - start
            return try await tasks.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(answered.sorted() == (0..<60).map { $0 * 2 })
        #expect(recorded.mostAtOnce == 1)
        let sizes = recorded.sizes
        #expect(sizes.reduce(0, +) == 60)
        // One 20 ms commit at a time, each taking what arrived during the one before: at most one batch
        // per commit time while the requests arrived, plus the first and the last. About 12 when the
        // sleeps take their 4 ms (on a loaded machine they take longer, and the requests spread over
        // more commits); a batch for each request made 60.
        let commits = Int(arriving / .milliseconds(20))
        #expect(sizes.count <= commits + 2, "\(sizes) over \(arriving) of arrivals")
    }

    @Test("a lone request is committed at once, alone")
    func lone() async throws {
        let group = GroupCommit<Int, Int>(batchSize: 64, concurrentBatches: 4) { requests in
            #expect(requests == [7])
            return [70]
        }
        #expect(try await group.submit(7) == 70)
    }

    @Test("a failing batch is retried one request at a time: the bad request gets its error, the others their outcomes")
    func failureIsolated() async throws {
        let group = GroupCommit<Int, Int>(batchSize: 64, concurrentBatches: 1) { requests in
            try await Task.sleep(for: .milliseconds(5))
            if requests.contains(13) { throw Refused(request: 13) }
            return requests
        }
        let results = await withTaskGroup(of: (Int, Result<Int, Refused>).self) { tasks in
            for request in 0..<50 {
                tasks.addTask {
                    do {
                        return (request, .success(try await group.submit(request)))
                    } catch let error as Refused {
                        return (request, .failure(error))
                    } catch {
                        return (request, .failure(Refused(request: -1)))
                    }
                }
            }
            return await tasks.reduce(into: [Int: Result<Int, Refused>]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 50)
        for (request, result) in results {
            if request == 13 {
                #expect(result == .failure(Refused(request: 13)))
            } else {
                #expect(result == .success(request))
            }
        }
    }

    @Test("an error that is not the requests' own (retriesAlone false) fails the whole batch at once, without a retry per request")
    func outageFailsTogether() async throws {
        let commits = Mutex(0)
        let group = GroupCommit<Int, Int>(batchSize: 64, concurrentBatches: 1, retriesAlone: { _ in false }) { requests in
            commits.withLock { $0 += 1 }
            try await Task.sleep(for: .milliseconds(20))
            throw Refused(request: -1)
        }
        let failures = await withTaskGroup(of: Bool.self) { tasks in
            for request in 0..<20 {
                tasks.addTask {
                    do {
                        _ = try await group.submit(request)
                        return false
                    } catch {
                        return error as? Refused == Refused(request: -1)
                    }
                }
            }
            return await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(failures == 20)
        // The first request alone, then the 19 that waited meanwhile in one batch (possibly split in two): never 20 commits.
        #expect(commits.withLock { $0 } <= 3)
    }
}
