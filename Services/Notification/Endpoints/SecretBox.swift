import Crypto
import Foundation
import WebhookSignatures

/// Endpoint signing secrets at rest: AES-256-GCM with `NOTIFICATION_SECRETS_KEY`, the endpoint's id as
/// authenticated data (a sealed secret copied to another endpoint's row does not open). A secret is
/// `whsec_` + base64 of 32 random bytes (Standard Webhooks); it leaves the service only in the answer
/// that creates it, and is never logged.
struct SecretBox: Sendable {
    /// The 32 bytes of `NOTIFICATION_SECRETS_KEY`.
    let keyBytes: Data

    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    struct Unreadable: Error, CustomStringConvertible {
        var description: String { "an endpoint secret does not decrypt with NOTIFICATION_SECRETS_KEY (was the key changed?)" }
    }

    /// A new secret's text.
    static func newSecret() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return "whsec_" + bytes.base64EncodedString()
    }

    func seal(_ secret: String, endpoint: UUID) throws -> Data {
        let box = try AES.GCM.seal(Data(secret.utf8), using: key, authenticating: Self.associatedData(endpoint))
        guard let combined = box.combined else { throw Unreadable() }
        return combined
    }

    func open(_ sealed: Data, endpoint: UUID) throws -> StandardWebhookSecret {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(endpoint))
            guard let secret = StandardWebhookSecret(String(decoding: plain, as: UTF8.self)) else { throw Unreadable() }
            return secret
        } catch {
            throw Unreadable()
        }
    }

    private static func associatedData(_ endpoint: UUID) -> Data {
        Data(("notification-endpoint:" + endpoint.lowercasedString).utf8)
    }
}
