import Foundation
import Logging
import Messaging
import Metrics
import ServiceKit
import ServiceLifecycle
import SharedModel
import Synchronization
import WebhookSignatures

/// Sends due deliveries (DESIGN.md, Notification).
///
/// - Claims due deliveries from Postgres (``DeliveryRepository/claim(_:now:)``: due-time index,
///   `FOR UPDATE SKIP LOCKED`, a lease), at most `maximumInFlight` in this process and
///   `endpointConcurrency` per endpoint, so a slow or dead endpoint holds its own slots and no one
///   else's. Woken at once by the fan-out after it commits new deliveries, otherwise it looks every
///   `pollInterval` (a due delivery starts within 1 s of its due time).
/// - Each claim: waits for its endpoint's rate limit (``EndpointRateLimiter``, shared by every
///   instance through Redis; at most 2 s: a longer wait gives the claim back, due when the limit allows), checks the URL against the SSRF policy again
///   (the name may resolve elsewhere now), signs with every active secret, sends, and records the
///   attempt with the ``DeliverySchedule``'s decision (``AttemptRecorder``: many attempts to a
///   transaction when they finish together).
/// - Durable: state lives in Postgres only. A process killed mid-attempt leaves a lease that runs out,
///   and the delivery is sent again (the receiver sees that `webhook-id` twice at most per crash, as
///   Standard Webhooks allows; `notification_redeliveries_after_lease_total` counts them).
/// - Graceful shutdown: stops claiming, lets attempts in flight finish for up to 5 s, then cancels
///   them and gives their claims back unsent.
final class DeliveryDispatcher: Service, Sendable {
    private let repository: DeliveryRepository
    private let sender: WebhookSender
    private let policy: EndpointURLPolicy
    private let secrets: SecretBox
    private let schedule: DeliverySchedule
    private let settings: DeliverySettings
    private let clock: WallClock
    private let logger: Logger
    private let random: @Sendable () -> Double
    private let doorbell = Doorbell()
    private let limiter: EndpointRateLimiter
    private let recorder: AttemptRecorder
    private let inFlight = Synchronized(0)
    private let outcomes: [String: Counter]
    private let latency: [String: Timer]
    private let reclaimed = Counter(label: "notification_redeliveries_after_lease_total")

    init(
        repository: DeliveryRepository, sender: WebhookSender, policy: EndpointURLPolicy, secrets: SecretBox, settings: DeliverySettings,
        rateLimits: EndpointRateLimiter, clock: WallClock, logger: Logger,
        random: @escaping @Sendable () -> Double = { Double.random(in: -1...1) }
    ) {
        self.repository = repository
        self.limiter = rateLimits
        self.sender = sender
        self.policy = policy
        self.secrets = secrets
        self.schedule = DeliverySchedule(disableAfter: settings.disableAfter)
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.random = random
        self.recorder = AttemptRecorder(repository: repository, clock: clock, logger: logger)
        outcomes = Dictionary(
            uniqueKeysWithValues: ["succeeded", "retrying", "failed"].map {
                ($0, Counter(label: "notification_deliveries_total", dimensions: [("outcome", $0)]))
            })
        latency = Dictionary(
            uniqueKeysWithValues: ["delivered", "refused", "unreachable"].map {
                ($0, Timer(label: "notification_attempt_duration_seconds", dimensions: [("result", $0)], preferredDisplayUnit: .seconds))
            })
    }

    /// Claims due deliveries now instead of at the next poll.
    func wake() { doorbell.ring() }

    func run() async throws {
        let shuttingDown = Synchronized(false)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.recorder.run() }
                await self.claimLoop(stop: shuttingDown)
                // Every attempt has ended (recorded, or given back): the writer drains and stops.
                self.recorder.finish()
            }
        } onGracefulShutdown: {
            shuttingDown.withLock { $0 = true }
            self.doorbell.ring()
        }
    }

    private func claimLoop(stop: Synchronized<Bool>) async {
        // Discarding: a finished attempt's task is freed at once (a plain task group keeps every
        // child's result until someone awaits it, which this loop never does).
        await withDiscardingTaskGroup { attempts in
            while !stop.withLock({ $0 }) && !Task.isCancelled {
                let free = settings.maximumInFlight - inFlight.withLock { $0 }
                var claimedAll = false
                if free > 0 {
                    let batch = min(free, 128)
                    do {
                        let limits = DeliveryRepository.ClaimLimits(
                            count: batch, perEndpoint: settings.endpointConcurrency, lease: settings.lease, orderWait: settings.orderWait)
                        let claimStarted = ContinuousClock.now
                        let (claimed, targets) = try await repository.claim(limits, now: clock.now())
                        let claimTook = ContinuousClock.now - claimStarted
                        if claimTook > settings.lease / 3 {
                            // The leases were dated before the claim ran: sent now, these could outlive them
                            // and be claimed again. Give them back; the next claim dates them afresh.
                            logger.warning("a claim took too long; its deliveries are given back", metadata: ["seconds": "\(claimTook)"])
                            try await repository.release(claimed, dueAt: clock.now())
                            continue
                        }
                        claimedAll = claimed.count == batch
                        for delivery in claimed {
                            if delivery.reclaimed { reclaimed.increment() }
                            guard let target = targets[delivery.endpointID] else { continue }
                            inFlight.withLock { $0 += 1 }
                            attempts.addTask {
                                await self.deliver(delivery, to: target)
                                self.inFlight.withLock { $0 -= 1 }
                                self.doorbell.ring()
                            }
                        }
                    } catch {
                        logger.warning("could not claim due deliveries", metadata: ["error": "\(error)"])
                    }
                }
                if !claimedAll { await doorbell.wait(upTo: settings.pollInterval) }
            }
            // Shutdown: attempts in flight get a moment to finish and record; the rest are cancelled.
            let deadline = ContinuousClock.now + .seconds(5)
            while inFlight.withLock({ $0 }) > 0 && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            attempts.cancelAll()
        }
    }

    private func deliver(_ delivery: ClaimedDelivery, to target: DeliveryTarget) async {
        let metadata: Logger.Metadata = [
            "delivery_id": "\(delivery.id)", "endpoint_id": "\(target.id)", "event_id": "\(delivery.eventID)", "attempt": "\(delivery.attempt)",
        ]
        switch await limiter.reserve(target.id, perSecond: target.rateLimitPerSecond, maximumWait: DeliverySettings.maximumRateLimitWait) {
        case .later(let after):
            await giveBack(delivery, dueAt: clock.now().adding(after))
            return
        case .now(let wait) where wait > .zero:
            do {
                try await Task.sleep(for: wait)
            } catch {
                await giveBack(delivery)
                return
            }
        case .now:
            break
        }
        let started = ContinuousClock.now
        let attemptedAt = clock.now()
        let answer: WebhookSender.Answer
        do {
            let keys = try target.sealedSecrets.map { try secrets.open($0, endpoint: target.id) }
            let address: IPAddress?
            do {
                address = try await policy.check(target.url)
            } catch {
                throw URLNotAllowed(reason: error.reason)
            }
            answer = await sender.send(
                url: target.url, connectingTo: address, webhookID: delivery.eventID.lowercasedString, body: delivery.body, secrets: keys,
                at: attemptedAt)
        } catch let error as URLNotAllowed {
            answer = WebhookSender.Answer(outcome: .unreachable(error: "the URL is no longer allowed: \(error.reason)"), excerpt: nil)
        } catch {
            logger.error("could not sign a delivery", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            answer = WebhookSender.Answer(outcome: .unreachable(error: "\(error)"), excerpt: nil)
        }
        if Task.isCancelled {
            await giveBack(delivery)
            return
        }
        let elapsed = ContinuousClock.now - started
        let decision = schedule.decide(
            answer.outcome, attempt: delivery.attempt, failingSince: target.failingSince, now: clock.now(), random: random())
        let record = AttemptRecord(
            delivery: delivery, attemptedAt: attemptedAt, latency: elapsed, outcome: answer.outcome, responseExcerpt: answer.excerpt,
            decision: decision)
        switch answer.outcome {
        case .delivered: latency["delivered"]?.recordNanoseconds(elapsed.wholeNanoseconds)
        case .refused: latency["refused"]?.recordNanoseconds(elapsed.wholeNanoseconds)
        case .unreachable: latency["unreachable"]?.recordNanoseconds(elapsed.wholeNanoseconds)
        }
        guard await recorder.record(record) else { return }
        switch decision.next {
        case .succeeded: outcomes["succeeded"]?.increment()
        case .retry: outcomes["retrying"]?.increment()
        case .failed: outcomes["failed"]?.increment()
        }
        if case .disable(let reason, _) = decision.endpoint {
            logger.warning("endpoint disabled", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
        }
        if delivery.outOfOrder, delivery.attempt == 1 {
            logger.info("delivery sent out of order after waiting for an earlier one", metadata: metadata)
        }
    }

    private func giveBack(_ delivery: ClaimedDelivery, dueAt: Date? = nil) async {
        do {
            try await repository.release([delivery], dueAt: dueAt ?? clock.now())
        } catch {
            logger.warning("could not give back an unsent delivery; it is sent when its lease runs out", metadata: ["error": "\(error)"])
        }
    }

    private struct URLNotAllowed: Error {
        let reason: String
    }
}
