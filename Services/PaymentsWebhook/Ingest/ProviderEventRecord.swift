import Foundation
import SharedModel

/// Who sent a verified delivery; part of the once-only key `(provider, provider_event_id)`.
enum PaymentSource: String, Sendable, CaseIterable {
    /// A Stripe-compatible provider, on `POST /v1/webhooks/stripe`.
    case stripe
    /// An internal payment service, on `POST /v1/payment-events` (Standard Webhooks).
    case `internal`
}

/// A verified delivery, read: the columns stored for it and the domain event it becomes (`nil` for
/// a type the platform does not act on, which is stored as `ignored`).
struct ProviderEventRecord: Sendable {
    var source: PaymentSource
    var providerEventID: PaymentEventID
    var eventType: String
    var bookingID: BookingID? = nil
    var providerRef: String? = nil
    var amount: Money? = nil
    var domainEvent: (any DomainEvent)? = nil
}

/// A delivery whose signature verified but whose body cannot be read as its type requires. It is
/// answered 400 and kept (once per body) for an operator.
struct MalformedDelivery: Error, Sendable, Equatable {
    let reason: String
}

/// Reads fields out of a JSON body, throwing ``MalformedDelivery`` naming the path of the first
/// missing or mistyped one. Parsed with `JSONSerialization` (several times faster than decoding the
/// whole document through `Codable`, measured on 1 KiB events), read strictly: an integer field takes
/// only a JSON integer, never `true`, `1.5` or `1e3`.
struct JSONFields {
    private let root: [String: Any]

    /// Parses `bytes` as a JSON object.
    init(bytes: [UInt8]) throws(MalformedDelivery) {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw MalformedDelivery(reason: "the body is not valid JSON")
        }
        guard let object = value as? [String: Any] else { throw MalformedDelivery(reason: "the body is not a JSON object") }
        root = object
    }

    /// The value at a dotted path; `nil` when absent or `null`.
    func value(_ path: String) -> Any? {
        var current: Any? = root
        for key in path.split(separator: ".") {
            current = (current as? [String: Any])?[String(key)]
        }
        return current is NSNull ? nil : current
    }

    func string(_ path: String) throws(MalformedDelivery) -> String {
        guard let text = optionalString(path), !text.isEmpty else { throw MalformedDelivery(reason: "\(path) must be a non-empty string") }
        return text
    }

    func optionalString(_ path: String) -> String? {
        value(path) as? String
    }

    func integer(_ path: String) throws(MalformedDelivery) -> Int64 {
        guard let number = value(path) as? NSNumber, Self.integerTypes.contains(String(cString: number.objCType)),
            let integer = number as? Int64
        else { throw MalformedDelivery(reason: "\(path) must be an integer") }
        return integer
    }

    /// `NSNumber` type encodings of integers (`c` is a boolean, `d` a floating-point number).
    private static let integerTypes: Set<String> = ["q", "Q", "l", "L", "i", "I", "s", "S"]

    /// `amountPath` (non-negative minor units) in the currency at `currencyPath` (any case).
    func money(amount amountPath: String, currency currencyPath: String) throws(MalformedDelivery) -> Money {
        let amount = try integer(amountPath)
        guard amount >= 0 else { throw MalformedDelivery(reason: "\(amountPath) must not be negative") }
        do {
            return Money(amount: amount, currency: try Currency(try string(currencyPath)))
        } catch let error as MalformedDelivery {
            throw error
        } catch {
            throw MalformedDelivery(reason: "\(currencyPath) must be a three-letter ISO 4217 code")
        }
    }

    /// The provider's event id at `path`.
    func eventID(_ path: String) throws(MalformedDelivery) -> PaymentEventID {
        do {
            return try PaymentEventID(parsing: try string(path))
        } catch let error as MalformedDelivery {
            throw error
        } catch {
            throw MalformedDelivery(reason: "\(path) must be at most \(String.maximumIdentifierLength) characters without control characters")
        }
    }

    /// A UUID at `path`; absent or `null` is `nil`, anything else that is not a UUID is malformed.
    func strictUUID(_ path: String) throws(MalformedDelivery) -> UUID? {
        guard let value = value(path) else { return nil }
        guard let text = value as? String, let uuid = UUID(uuidString: text) else {
            throw MalformedDelivery(reason: "\(path) must be a UUID or null")
        }
        return uuid
    }

    /// A UUID at `path` when there is one; anything else (absent, not a UUID) is `nil`. For metadata a
    /// provider echoes back, where a foreign value must not stop a real payment from flowing on.
    func lenientUUID(_ path: String) -> UUID? {
        optionalString(path).flatMap(UUID.init(uuidString:))
    }
}
