import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServiceKit
import WebhookSignatures

/// Sends one signed attempt (DESIGN.md, Notification): `POST` with `Content-Type: application/json`
/// and `Content-Length`, `webhook-id` (the event id), `webhook-timestamp` (now, in seconds) and
/// `webhook-signature` (`v1,<base64>` per active secret, space-separated). Redirects are not followed
/// (the client is built with them disallowed: a 30x is an answer like any other); the attempt ends at
/// the timeout; at most 1 KiB of the answer is kept.
struct WebhookSender: Sendable {
    /// For URLs whose host is an IP address, and names the check left to the client to resolve.
    let client: HTTPClient
    /// For names the check resolved: each connects to the address its check accepted.
    let pinned: PinnedHTTPClients
    let timeout: Duration

    static let excerptLimit = 1_024
    /// Beyond this much of an answer's body the connection is dropped instead of read to the end.
    static let drainLimit = 64 * 1_024

    /// The client every delivery shares: pooled HTTP/1.1 keep-alive connections, no redirects. `perHost`
    /// is the process's whole in-flight budget: many endpoints can share one host (an integration
    /// platform's), and the per-endpoint limit is the dispatcher's, not the pool's, so a slow endpoint
    /// never holds the connections its host's other endpoints need.
    static func makeClient(perHost: Int, dnsOverride: [String: String] = [:]) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: nil),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: perHost)
        )
        configuration.httpVersion = .http1Only
        // A refused connection is this attempt's failure, reported at once: the schedule decides
        // when to try again, not the pool (which would keep reconnecting until the timeout).
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.dnsOverride = dnsOverride
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    struct Answer: Sendable {
        let outcome: AttemptOutcome
        let excerpt: String?
    }

    /// The clients of a sender whose pinned clients share `perHost` with its unpinned one.
    static func makeClients(perHost: Int) -> (client: HTTPClient, pinned: PinnedHTTPClients) {
        (makeClient(perHost: perHost), PinnedHTTPClients { makeClient(perHost: perHost, dnsOverride: $0) })
    }

    /// Sends one attempt to `url`, connecting to `address` (what the URL's check resolved its host to)
    /// when given, else wherever the client resolves the host.
    func send(
        url: String, connectingTo address: IPAddress?, webhookID: String, body: [UInt8], secrets: [StandardWebhookSecret], at now: Date
    ) async -> Answer {
        // The host exactly as async-http-client reads it from the URL, which is what its DNS override
        // is looked up by.
        guard let address, let host = URL(string: url)?.host else {
            return await send(url: url, with: client, webhookID: webhookID, body: body, secrets: secrets, at: now)
        }
        do {
            return try await pinned.withClient(host: host, address: address) { client in
                await send(url: url, with: client, webhookID: webhookID, body: body, secrets: secrets, at: now)
            }
        } catch {
            return Answer(outcome: .unreachable(error: Self.describe(error)), excerpt: nil)
        }
    }

    private func send(
        url: String, with client: HTTPClient, webhookID: String, body: [UInt8], secrets: [StandardWebhookSecret], at now: Date
    ) async -> Answer {
        let timestamp = Int64(now.timeIntervalSince1970.rounded(.down))
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "booking-platform-notification/1")
        request.headers.add(name: "webhook-id", value: webhookID)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(
            name: "webhook-signature",
            value: secrets.map { StandardWebhooks.signature(payload: body, id: webhookID, timestamp: timestamp, secret: $0) }.joined(separator: " "))
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            let status = Int(response.status.code)
            var excerpt: [UInt8] = []
            var read = 0
            for try await chunk in response.body {
                if excerpt.count < Self.excerptLimit {
                    excerpt += chunk.readableBytesView.prefix(Self.excerptLimit - excerpt.count)
                }
                read += chunk.readableBytes
                if read > Self.drainLimit { break }
            }
            let text = excerpt.isEmpty ? nil : String(decoding: excerpt, as: UTF8.self)
            if (200..<300).contains(status) { return Answer(outcome: .delivered(status: status), excerpt: text) }
            let retryAfter =
                (status == 429 || status == 503) ? response.headers.first(name: "Retry-After").flatMap { Self.retryAfter($0, now: now) } : nil
            return Answer(outcome: .refused(status: status, retryAfter: retryAfter), excerpt: text)
        } catch {
            return Answer(outcome: .unreachable(error: Self.describe(error)), excerpt: nil)
        }
    }

    /// `Retry-After` as delta-seconds or an HTTP date; nil when it is neither or lies in the past.
    static func retryAfter(_ text: String, now: Date) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed), date > now else { return nil }
        return Duration(timeInterval: date.timeIntervalSince(now))
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout { return "timed out" }
            return "HTTP client: \(error)"
        }
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return String(text.prefix(500))
    }
}
