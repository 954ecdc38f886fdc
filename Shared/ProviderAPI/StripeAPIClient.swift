import AsyncHTTPClient
import Foundation
import Metrics
import NIOCore
import ServiceKit
import SharedModel
import Synchronization

/// How a call to the payment provider failed.
public enum ProviderCallError: Error, Equatable, CustomStringConvertible {
    /// The provider refused the request for good (a 4xx other than 401/403/409/429): retrying the same
    /// request cannot succeed.
    case refused(status: Int, code: String?, message: String)
    /// The call may succeed later (timeout, connection error, 5xx, 429, 409 for a key in use, or 401/403
    /// - our credentials, which an operator can fix); retry with the same idempotency key.
    case unavailable(String)

    public var description: String {
        switch self {
        case .refused(let status, let code, let message): "refused (\(status)\(code.map { " \($0)" } ?? "")): \(message)"
        case .unavailable(let reason): "unavailable: \(reason)"
        }
    }
}

/// Stripe's HTTP API (and anything compatible, such as the local simulator): form-encoded `POST`s with
/// an `Idempotency-Key`, `GET`s, `Authorization: Bearer <key>` on all of them, and every answer
/// classified into a JSON object or a ``ProviderCallError``.
///
/// The provider's rate limit is respected: a 429 pauses every call through this client (all lanes of
/// the worker share it) until its `Retry-After` (1 s when absent, at most 60 s) has passed, and the
/// call is sent again, with the same idempotency key, for up to ``maximumThrottledWait`` in all;
/// past that it fails as `unavailable` and the consumer's backoff takes over. Counted in
/// `provider_rate_limited_total`.
public struct StripeAPIClient: Sendable {
    public struct Configuration: Sendable, CustomStringConvertible {
        /// e.g. `https://api.stripe.com`, without a trailing slash.
        public var baseURL: String
        /// The secret API key. Never logged.
        public var apiKey: String
        public var timeout: Duration

        public init(baseURL: String, apiKey: String, timeout: Duration) {
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.timeout = timeout
        }

        /// Never the key: ServiceLifecycle logs its services' descriptions at debug level.
        public var description: String { "StripeAPIClient.Configuration(baseURL: \(baseURL), apiKey: <redacted>, timeout: \(timeout))" }
    }

    public let client: HTTPClient
    public let configuration: Configuration
    /// When calls may go out again after a 429.
    private let throttle = ProviderThrottle()
    /// How long one call waits out 429s in all before it fails as `unavailable` (well within the
    /// consumers' 30 s visibility timeout).
    public static var maximumThrottledWait: Duration { .seconds(20) }

    public init(client: HTTPClient, configuration: Configuration) {
        self.client = client
        self.configuration = configuration
    }

    /// The HTTP client provider calls go through. A refused connection fails the call at once (the
    /// consumer's own backoff retries it) instead of being retried inside the client until the timeout.
    public static func makeHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(5))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// POSTs the form and returns the JSON object of a 2xx answer; classifies everything else.
    public func post(_ path: String, form: [(name: String, value: String)], idempotencyKey: String) async throws(ProviderCallError) -> JSONValue {
        var request = HTTPClientRequest(url: configuration.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Idempotency-Key", value: idempotencyKey)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: StripeForm(pairs: form).encoded))
        return try await send(request)
    }

    /// GETs `path` with the query `parameters` and returns the JSON object of a 2xx answer.
    public func get(_ path: String, parameters: [(name: String, value: String)]) async throws(ProviderCallError) -> JSONValue {
        var request = HTTPClientRequest(url: configuration.baseURL + path + "?" + StripeForm(pairs: parameters).encoded)
        request.method = .GET
        return try await send(request)
    }

    /// Sends `request` with the API key and returns the JSON object of a 2xx answer; classifies
    /// everything else.
    private func send(_ request: HTTPClientRequest) async throws(ProviderCallError) -> JSONValue {
        var request = request
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.apiKey)")
        var status: Int
        var body: ByteBuffer
        var throttled = Duration.zero
        while true {
            do {
                try await throttle.waitUntilOpen()
                let response = try await client.execute(request, timeout: .milliseconds(configuration.timeout.wholeMilliseconds))
                status = Int(response.status.code)
                body = try await response.body.collect(upTo: 1 << 20)
                guard status == 429 else { break }
                let wait = ProviderThrottle.retryAfter(response.headers.first(name: "Retry-After"))
                throttle.pause(for: wait)
                ProviderThrottle.rateLimited.increment()
                guard throttled + wait <= Self.maximumThrottledWait else { break }
                throttled += wait
            } catch {
                throw .unavailable("the provider could not be reached: \(error)")
            }
        }
        let json = try? JSONDecoder.platform.decode(JSONValue.self, from: Data(buffer: body))
        switch status {
        case 200..<300:
            guard let json, json.objectValue != nil else { throw .unavailable("the provider answered \(status) without a JSON object") }
            return json
        case 401, 403, 409, 429, 500...:
            throw .unavailable("the provider answered \(status)\(json.flatMap(Self.errorMessage).map { ": \($0)" } ?? "")")
        default:
            throw .refused(
                status: status, code: json?["error"]?["code"]?.stringValue,
                message: json.flatMap(Self.errorMessage) ?? "the provider refused the request with \(status)")
        }
    }

    private static func errorMessage(_ json: JSONValue) -> String? {
        json["error"]?["message"]?.stringValue
    }
}

/// The provider's rate limit as its last 429 stated it: no call through the client goes out before
/// `resumeAt`.
final class ProviderThrottle: Sendable {
    private let resumeAt = Mutex<ContinuousClock.Instant?>(nil)
    /// `provider_rate_limited_total`: 429 answers of the provider.
    static let rateLimited = Counter(label: "provider_rate_limited_total")

    /// Sleeps until the pause (if any) is over.
    func waitUntilOpen() async throws {
        while let until = resumeAt.withLock({ $0 }), until > .now {
            try await Task.sleep(until: until, clock: .continuous)
        }
    }

    /// No call before `wait` from now (a later pause already set stands).
    func pause(for wait: Duration) {
        let until = ContinuousClock.now + wait
        resumeAt.withLock { current in
            if current.map({ $0 < until }) ?? true { current = until }
        }
    }

    /// `Retry-After` in seconds (1 when absent or unreadable; between 0.1 and 60 s).
    static func retryAfter(_ header: String?) -> Duration {
        guard let header, let seconds = Double(header.trimmingCharacters(in: .whitespaces)), seconds.isFinite else { return .seconds(1) }
        return .milliseconds(Int64(min(max(seconds, 0.1), 60) * 1000))
    }
}
