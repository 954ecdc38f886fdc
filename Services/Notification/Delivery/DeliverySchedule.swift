import Foundation
import SharedModel

/// What one attempt came to, as the sender saw it.
enum AttemptOutcome: Sendable, Equatable {
    /// A 2xx answer.
    case delivered(status: Int)
    /// Any other answer. `retryAfter` is the `Retry-After` of a 429 or 503, when it had one.
    case refused(status: Int, retryAfter: Duration?)
    /// No answer: refused connection, timeout, TLS failure, or the URL no longer allowed.
    case unreachable(error: String)

    var statusCode: Int? {
        switch self {
        case .delivered(let status), .refused(let status, _): status
        case .unreachable: nil
        }
    }
}

/// Decides what follows an attempt (decide / apply / adapt: this is the pure part; the repository
/// applies it, the dispatcher adapts HTTP into an ``AttemptOutcome``).
///
/// - 2xx: `succeeded`, and the endpoint is healthy again.
/// - 410 Gone: the delivery stays pending and the endpoint is disabled at once.
/// - anything else: the next attempt follows the Standard Webhooks schedule after this failure
///   (``delays``: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h after attempts 1 to 9), each
///   with +-20% jitter, and at least `Retry-After` later for a 429 or 503 that sent one (capped at
///   24 h). After the last attempt the delivery is `failed` (and dead-lettered).
/// - an endpoint failing without a success since `disableAfter` ago is disabled.
struct DeliverySchedule: Sendable {
    /// The wait before attempt `n + 2` after attempt `n + 1` failed; the first attempt is immediate.
    static let standardDelays: [Duration] = [
        .seconds(5), .seconds(300), .seconds(1_800), .seconds(7_200), .seconds(18_000), .seconds(36_000), .seconds(50_400),
        .seconds(72_000), .seconds(86_400),
    ]

    var delays: [Duration] = standardDelays
    /// The fraction each delay varies by, either way.
    var jitter = 0.2
    var disableAfter: Duration
    /// The longest `Retry-After` honoured.
    var maximumRetryAfter: Duration = .seconds(86_400)

    /// Attempts a delivery gets in all.
    var maximumAttempts: Int { delays.count + 1 }

    enum Next: Sendable, Equatable {
        case succeeded
        case retry(at: Date)
        /// The last attempt failed.
        case failed
    }

    enum EndpointChange: Sendable, Equatable {
        case healthy
        /// Failing; `since` is the first failure since the last success (kept when already set).
        case failing(since: Date)
        case disable(reason: String, failingSince: Date)
    }

    struct Decision: Sendable, Equatable {
        let next: Next
        let endpoint: EndpointChange
    }

    /// - Parameters:
    ///   - attempt: the number of the attempt that just ended (1 for the first).
    ///   - failingSince: the endpoint's first failure since its last success, if it is failing.
    ///   - random: a value in `-1...1` that picks the jitter.
    func decide(_ outcome: AttemptOutcome, attempt: Int, failingSince: Date?, now: Date, random: Double) -> Decision {
        if case .delivered = outcome { return Decision(next: .succeeded, endpoint: .healthy) }
        let since = failingSince ?? now
        let next: Next
        if attempt >= maximumAttempts {
            next = .failed
        } else {
            let base = delays[max(0, attempt - 1)]
            var wait = Duration(timeInterval: base.timeInterval * (1 + jitter * max(-1, min(1, random))))
            if case .refused(_, let retryAfter?) = outcome { wait = max(wait, min(retryAfter, maximumRetryAfter)) }
            next = .retry(at: now.adding(wait))
        }
        if case .refused(410, _) = outcome {
            return Decision(next: next, endpoint: .disable(reason: "the endpoint answered 410 Gone", failingSince: since))
        }
        if now.timeIntervalSince(since) >= disableAfter.timeInterval {
            let seconds = Int(disableAfter.timeInterval)
            let span = seconds % 86_400 == 0 ? "\(seconds / 86_400) days" : seconds % 3_600 == 0 ? "\(seconds / 3_600) h" : "\(seconds) s"
            return Decision(
                next: next, endpoint: .disable(reason: "no successful delivery for \(span) (NOTIFICATION_DISABLE_AFTER)", failingSince: since))
        }
        return Decision(next: next, endpoint: .failing(since: since))
    }
}
