import Crypto
import Foundation
import WebhookSignatures

/// Endpoint signing secrets at rest: AES-256-GCM with `NOTIFICATION_SECRETS_KEY`, the endpoint's id as
/// authenticated data (a sealed secret copied to another endpoint's row does not open). A secret is
/// `whsec_` + base64 of 32 random bytes (Standard Webhooks); it leaves the service only in the answer
/// that creates it, and is never logged.
///
/// During a re-key (docs/operations.md, `NOTIFICATION_SECRETS_KEY`) the box holds the new key and the
/// one it replaces (`NOTIFICATION_SECRETS_KEY_PREVIOUS`): it seals with the new key and opens with
/// either, so secrets sealed under the old key keep signing until `notification rekey-secrets` has
/// sealed them again.
struct SecretBox: Sendable {
    /// The 32 bytes of each key: the current one first, then the one it replaces, if any.
    let keys: [Data]

    init(keys: [Data]) {
        self.keys = keys
    }

    /// A box with one key.
    init(keyBytes: Data) {
        self.init(keys: [keyBytes])
    }

    struct Unreadable: Error, CustomStringConvertible {
        var description: String {
            "an endpoint secret does not decrypt with NOTIFICATION_SECRETS_KEY or NOTIFICATION_SECRETS_KEY_PREVIOUS (was the key changed?)"
        }
    }

    /// A new secret's text.
    static func newSecret() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return "whsec_" + bytes.base64EncodedString()
    }

    func seal(_ secret: String, endpoint: UUID) throws -> Data {
        guard let current = keys.first else { throw Unreadable() }
        let box = try AES.GCM.seal(Data(secret.utf8), using: SymmetricKey(data: current), authenticating: Self.associatedData(endpoint))
        guard let combined = box.combined else { throw Unreadable() }
        return combined
    }

    func open(_ sealed: Data, endpoint: UUID) throws -> StandardWebhookSecret {
        guard let secret = StandardWebhookSecret(try opened(sealed, endpoint: endpoint).text) else { throw Unreadable() }
        return secret
    }

    /// The secret's text and the position of the key that opened it (0: the current key).
    private func opened(_ sealed: Data, endpoint: UUID) throws -> (text: String, key: Int) {
        guard let box = try? AES.GCM.SealedBox(combined: sealed) else { throw Unreadable() }
        for (index, key) in keys.enumerated() {
            if let plain = try? AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Self.associatedData(endpoint)) {
                return (String(decoding: plain, as: UTF8.self), index)
            }
        }
        throw Unreadable()
    }

    /// `sealed` sealed again under the current key; nil when it already is. Throws when no key opens it.
    func resealed(_ sealed: Data, endpoint: UUID) throws -> Data? {
        let (text, key) = try opened(sealed, endpoint: endpoint)
        return key == 0 ? nil : try seal(text, endpoint: endpoint)
    }

    private static func associatedData(_ endpoint: UUID) -> Data {
        Data(("notification-endpoint:" + endpoint.lowercasedString).utf8)
    }
}
