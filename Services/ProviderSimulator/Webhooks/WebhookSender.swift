import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import WebhookSignatures

/// Delivers signed events to the configured endpoint as Stripe does: a JSON POST with
/// `Stripe-Signature` over the exact bytes sent, retried on a non-2xx answer or a connection error
/// with a delay that doubles after each attempt.
///
/// It is the `Service` that owns the one `HTTPClient`: the client is created on first use and shut
/// down when the service stops; deliveries still running in the background then are cancelled.
final class WebhookSender: Service, Sendable {
    private enum ClientState {
        case idle
        case running(HTTPClient)
        case shutDown
    }

    private struct Background {
        var next = 0
        var tasks: [Int: Task<Void, Never>] = [:]
        var closed = false
    }

    private let endpoint: String?
    private let secret: String
    private let attempts: Int
    private let retryDelay: Duration
    private let timeout: Duration
    private let logger: Logger
    private let client = Mutex(ClientState.idle)
    private let background = Mutex(Background())
    /// Webhooks to drop on purpose, by event type: how many more of each to drop (`nil`: all).
    private let drops = Mutex<[String: Int?]>([:])

    init(configuration: SimulatorConfiguration, logger: Logger) {
        if let url = configuration.webhookURL, let secret = configuration.webhookSecret {
            self.endpoint = url
            self.secret = secret
        } else {
            self.endpoint = nil
            self.secret = ""
        }
        self.attempts = max(1, configuration.webhookAttempts)
        self.retryDelay = configuration.webhookRetryDelay
        self.timeout = configuration.webhookTimeout
        self.logger = logger
    }

    /// Whether events are delivered at all (a webhook URL is configured).
    var isEnabled: Bool { endpoint != nil }

    /// Drops the next `count` webhooks of `type` (`nil`: every one until cleared): they are recorded
    /// as events (and listed by `GET /v1/events`) but never sent, as a webhook lost on the way.
    func drop(type: String, count: Int?) {
        drops.withLock { $0[type] = count }
    }

    /// Sends every webhook again.
    func clearDrops() {
        drops.withLock { $0.removeAll() }
    }

    /// `{"drops": [{"type", "count"}]}`.
    var dropList: SimulatorJSON {
        let entries = drops.withLock { $0.sorted { $0.key < $1.key } }
        return .object([("drops", .array(entries.map { .object([("type", .string($0.key)), ("count", .int($0.value))]) }))])
    }

    /// Whether `event` is to be dropped (counting it against its drop).
    private func takeDrop(_ event: StripeEvent) -> Bool {
        drops.withLock { drops in
            guard let entry = drops[event.type] else { return false }
            if let remaining = entry {
                if remaining <= 1 { drops[event.type] = nil } else { drops[event.type] = remaining - 1 }
            }
            return true
        }
    }

    /// Delivers `event` with retries and returns how it went; `nil` when delivery is disabled.
    func deliver(_ event: StripeEvent) async -> WebhookDelivery? {
        guard let endpoint else { return nil }
        if takeDrop(event) {
            logger.info("webhook dropped on purpose", metadata: ["event_id": "\(event.id)", "event_type": "\(event.type)"])
            return WebhookDelivery(status: nil, attempts: 0, delivered: false, dropped: true)
        }
        guard let client = currentClient() else {
            logger.warning("webhook not sent: the simulator is shutting down", metadata: ["event_id": "\(event.id)"])
            return WebhookDelivery(status: nil, attempts: 0, delivered: false)
        }
        var status: Int?
        for attempt in 1...attempts {
            status = await attemptDelivery(event, to: endpoint, with: client)
            if let status, (200..<300).contains(status) {
                logger.info(
                    "webhook delivered",
                    metadata: ["event_id": "\(event.id)", "event_type": "\(event.type)", "status": "\(status)", "attempts": "\(attempt)"])
                return WebhookDelivery(status: status, attempts: attempt, delivered: true)
            }
            guard attempt < attempts else { break }
            do {
                try await Task.sleep(for: retryDelay * (1 << (attempt - 1)))
            } catch {
                return WebhookDelivery(status: status, attempts: attempt, delivered: false)
            }
        }
        logger.warning(
            "webhook not delivered",
            metadata: ["event_id": "\(event.id)", "event_type": "\(event.type)", "status": "\(status.map(String.init) ?? "none")"])
        return WebhookDelivery(status: status, attempts: attempts, delivered: false)
    }

    /// Starts delivering `event` in a task of its own and hands the outcome to `completion`.
    /// Does nothing when delivery is disabled or the service has stopped.
    func deliverInBackground(_ event: StripeEvent, completion: @escaping @Sendable (WebhookDelivery) async -> Void) {
        guard isEnabled else { return }
        background.withLock { background in
            guard !background.closed else { return }
            let id = background.next
            background.next += 1
            background.tasks[id] = Task.detached {
                if let delivery = await self.deliver(event) { await completion(delivery) }
                self.background.withLock { _ = $0.tasks.removeValue(forKey: id) }
            }
        }
    }

    /// Waits for graceful shutdown, cancels background deliveries, then shuts the HTTP client down.
    func run() async throws {
        try? await gracefulShutdown()
        let pending = background.withLock { background in
            background.closed = true
            return Array(background.tasks.values)
        }
        for task in pending { task.cancel() }
        for task in pending { await task.value }
        let running = client.withLock { state -> HTTPClient? in
            defer { state = .shutDown }
            if case .running(let client) = state { return client }
            return nil
        }
        try await running?.shutdown()
    }

    private func currentClient() -> HTTPClient? {
        client.withLock { state in
            switch state {
            case .running(let client):
                return client
            case .shutDown:
                return nil
            case .idle:
                var configuration = HTTPClient.Configuration()
                configuration.redirectConfiguration = .disallow
                // A refused connection is a failed attempt of our own retry schedule, not retried inside the client.
                configuration.connectionPool.retryConnectionEstablishment = false
                configuration.timeout = .init(connect: TimeAmount(timeout), read: TimeAmount(timeout))
                let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
                state = .running(client)
                return client
            }
        }
    }

    /// One POST; the HTTP status, or `nil` when no answer came.
    private func attemptDelivery(_ event: StripeEvent, to endpoint: String, with client: HTTPClient) async -> Int? {
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        request.headers.add(name: "User-Agent", value: "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        let timestamp = Int64(Date().timeIntervalSince1970)
        request.headers.add(name: "Stripe-Signature", value: StripeSignature.header(payload: event.payload, secret: secret, timestamp: timestamp))
        request.body = .bytes(event.payload)
        do {
            let response = try await client.execute(request, timeout: TimeAmount(timeout), logger: logger)
            for try await _ in response.body {}
            return Int(response.status.code)
        } catch {
            logger.debug("webhook attempt failed", metadata: ["event_id": "\(event.id)", "error": "\(error)"])
            return nil
        }
    }
}
