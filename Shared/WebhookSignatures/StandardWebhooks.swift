import Crypto
import Foundation

/// A Standard Webhooks secret: `whsec_` followed by the base64 of the key bytes (DESIGN.md:
/// `PAYMENT_EVENTS_SECRETS`; the notification service signs outgoing deliveries the same way).
public struct StandardWebhookSecret: Sendable {
    private let bytes: [UInt8]

    /// Parses `whsec_<base64>`; nil for anything else or an empty key.
    public init?(_ text: String) {
        guard text.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(text.dropFirst(6))), !bytes.isEmpty else { return nil }
        self.bytes = Array(bytes)
    }

    var key: SymmetricKey { SymmetricKey(data: bytes) }
}

/// Standard Webhooks signatures (https://www.standardwebhooks.com): headers `webhook-id`,
/// `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64>[ v1,<base64> ...]`, where
/// each signature is the base64 HMAC-SHA256 of `"<id>.<timestamp>.<raw body>"`.
///
/// Guarantees of ``verify(payload:id:timestamp:signatures:secrets:now:tolerance:)``: raw bytes only,
/// any configured secret against any `v1` signature (rotation), constant-time comparison, the
/// timestamp within `tolerance` of `now` in both directions, other versions ignored; at most 8
/// signatures (of any version) per header, more make it malformed; one HMAC per secret.
public enum StandardWebhooks {
    /// Why a delivery was refused.
    public enum Failure: Error, Equatable, Sendable {
        case missingHeader(String)
        case malformedHeader(String)
        case timestampOutOfTolerance
        case noMatch
    }

    /// Verifies a delivery and returns its signed timestamp.
    @discardableResult
    public static func verify(
        payload: [UInt8], id: String?, timestamp: String?, signatures: String?, secrets: [StandardWebhookSecret], now: Date,
        tolerance: TimeInterval = 300
    ) throws(Failure) -> Date {
        guard let id, !id.isEmpty else { throw .missingHeader("webhook-id") }
        guard let timestamp, !timestamp.isEmpty else { throw .missingHeader("webhook-timestamp") }
        guard let signatures, !signatures.isEmpty else { throw .missingHeader("webhook-signature") }
        guard let seconds = Int64(timestamp), seconds >= 0 else { throw .malformedHeader("webhook-timestamp") }
        let signedAt = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard abs(now.timeIntervalSince(signedAt)) <= tolerance else { throw .timestampOutOfTolerance }
        let items = signatures.split(separator: " ", maxSplits: SignatureMatching.maximumSignatures)
        guard items.count <= SignatureMatching.maximumSignatures else { throw .malformedHeader("webhook-signature") }
        let candidates = items.compactMap { item -> [UInt8]? in
            let parts = item.split(separator: ",", maxSplits: 1)
            guard parts.count == 2, parts[0] == "v1", let bytes = Data(base64Encoded: String(parts[1])) else { return nil }
            return Array(bytes)
        }
        let prefix = Array("\(id).\(timestamp).".utf8)
        guard SignatureMatching.anyMatches(keys: secrets.map(\.key), prefix: prefix, payload: payload, candidates: candidates) else {
            throw .noMatch
        }
        return signedAt
    }

    /// The `webhook-signature` value for a delivery: `v1,<base64>`.
    public static func signature(payload: [UInt8], id: String, timestamp: Int64, secret: StandardWebhookSecret) -> String {
        let mac = SignatureMatching.code(key: secret.key, prefix: Array("\(id).\(timestamp).".utf8), payload: payload)
        return "v1," + Data(mac).base64EncodedString()
    }
}
