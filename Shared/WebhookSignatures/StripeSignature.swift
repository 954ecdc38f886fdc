import Crypto
import Foundation

/// Stripe's webhook signature (DESIGN.md, PaymentsWebhook): `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`,
/// where each `v1` is the hex HMAC-SHA256 of `"<t>.<raw body>"` keyed with the endpoint secret's
/// string as is (`whsec_...` included).
///
/// Guarantees of ``verify(payload:header:secrets:now:tolerance:)``: it looks only at the raw bytes
/// (verify before parsing); a request is accepted when any configured secret matches any `v1`
/// (several secrets while one is rotated out, several `v1` while Stripe rolls a secret); `t` must lie
/// within `tolerance` of `now` in both directions; every comparison is constant-time; other schemes
/// (`v0`) are ignored, so a header with only `v0` is refused; at most 8 signatures (of any scheme) per
/// header, more make it malformed; one HMAC per secret, whatever the number of signatures.
public enum StripeSignature {
    /// Why a signature was refused. Never echoes a secret or an expected signature.
    public enum Failure: Error, Equatable, Sendable {
        case missingHeader
        case malformedHeader
        case noV1Signature
        case timestampOutOfTolerance
        case noMatch
        case noSecretConfigured
    }

    /// Verifies `header` over `payload` and returns the signed timestamp.
    @discardableResult
    public static func verify(
        payload: [UInt8], header: String?, secrets: [String], now: Date, tolerance: TimeInterval = 300
    ) throws(Failure) -> Date {
        guard !secrets.isEmpty, secrets.allSatisfy({ !$0.isEmpty }) else { throw .noSecretConfigured }
        guard let header, !header.isEmpty else { throw .missingHeader }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        var signatureCount = 0
        // `t` and at most 8 signatures: a 10th item is malformed whatever it is, so the rest is never split.
        let items = header.split(separator: ",", maxSplits: SignatureMatching.maximumSignatures + 1)
        guard items.count <= SignatureMatching.maximumSignatures + 1 else { throw .malformedHeader }
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw .malformedHeader }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            switch name {
            case "t":
                guard timestamp == nil, let parsed = Int64(value), parsed >= 0 else { throw .malformedHeader }
                timestamp = parsed
            case "v1":
                signatureCount += 1
                guard signatureCount <= SignatureMatching.maximumSignatures else { throw .malformedHeader }
                // A v1 that is not 64 hex digits can match nothing; it does not invalidate the others.
                if let bytes = hexBytes(value), bytes.count == SHA256.byteCount { signatures.append(bytes) }
            default:
                signatureCount += 1
                guard signatureCount <= SignatureMatching.maximumSignatures else { throw .malformedHeader }
            }
        }
        guard let timestamp else { throw .malformedHeader }
        guard !signatures.isEmpty else { throw .noV1Signature }
        let signedAt = Date(timeIntervalSince1970: TimeInterval(timestamp))
        guard abs(now.timeIntervalSince(signedAt)) <= tolerance else { throw .timestampOutOfTolerance }
        let keys = secrets.map { SymmetricKey(data: Array($0.utf8)) }
        guard SignatureMatching.anyMatches(keys: keys, prefix: Array("\(timestamp).".utf8), payload: payload, candidates: signatures) else {
            throw .noMatch
        }
        return signedAt
    }

    /// The `Stripe-Signature` header Stripe would send for `payload` at `timestamp` (for the provider
    /// simulator and tests).
    public static func header(payload: [UInt8], secret: String, timestamp: Int64) -> String {
        "t=\(timestamp),v1=\(signature(payload: payload, secret: secret, timestamp: timestamp))"
    }

    /// The hex `v1` signature of `payload` at `timestamp`.
    public static func signature(payload: [UInt8], secret: String, timestamp: Int64) -> String {
        let mac = SignatureMatching.code(key: SymmetricKey(data: Array(secret.utf8)), prefix: Array("\(timestamp).".utf8), payload: payload)
        return mac.map { hexDigits[Int($0 >> 4)] + hexDigits[Int($0 & 0x0F)] }.joined()
    }

    private static let hexDigits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
