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
    /// A dispute, whose domain event is made once its payment's booking is looked up (the provider's
    /// dispute does not carry the payment's metadata); ``domainEvent`` stays `nil` until then.
    var dispute: DisputeReport? = nil

    /// ``dispute``'s domain event for the booking the platform knows for its payment (`nil`: none),
    /// set with that booking on the record.
    mutating func resolveDispute(bookingID: BookingID?) {
        guard let dispute else { return }
        self.bookingID = bookingID
        domainEvent = dispute.event(bookingID: bookingID)
    }
}

/// A dispute as a provider event reports it, before its booking is known.
struct DisputeReport: Sendable {
    var paymentEventID: PaymentEventID
    var source: PaymentSource
    var disputeRef: String
    var providerRef: String
    var amount: Money
    var reason: String?
    var status: String
    var providerCreatedAt: Date
    /// Set when the dispute closed.
    var outcome: DisputeOutcome?

    /// `payment.dispute_closed` when it closed, else `payment.disputed`.
    func event(bookingID: BookingID?) -> any DomainEvent {
        let details = DisputeDetails(
            paymentEventID: paymentEventID, provider: source.rawValue, disputeRef: disputeRef, providerRef: providerRef, bookingID: bookingID,
            amount: amount, reason: reason, status: status, providerCreatedAt: providerCreatedAt)
        guard let outcome else { return PaymentDisputed(dispute: details) }
        return PaymentDisputeClosed(dispute: details, outcome: outcome)
    }
}

/// A delivery whose signature verified but whose body cannot be read as its type requires. It is
/// answered 400 and kept (once per body) for an operator.
struct MalformedDelivery: Error, Sendable, Equatable {
    let reason: String
}

/// Reads fields out of a JSON body, throwing ``MalformedDelivery`` naming the path of the first
/// missing or mistyped one. Read strictly: an integer field takes only a JSON integer within Int64,
/// never `true`, `1.5` or `1e3`.
///
/// Parsed by the platform's direct reader (`JSONValue(fastParsing:)`, several times faster than
/// `JSONSerialization` and far faster than `Codable`); what it leaves undecided (a fraction or an
/// exponent, an integer beyond Int64, a key twice, a lone surrogate, a byte-order mark, nesting deeper
/// than 512) is parsed by `JSONSerialization` as before, its non-integer numbers kept as
/// ``JSONValue/number(_:)``, which no integer field accepts.
struct JSONFields {
    private let root: [String: JSONValue]

    /// Parses `bytes` as a JSON object.
    init(bytes: [UInt8]) throws(MalformedDelivery) {
        let data = Data(bytes)
        let value: JSONValue
        if let read = JSONValue(fastParsing: data) {
            value = read
        } else {
            guard let object = try? JSONSerialization.jsonObject(with: data) else {
                throw MalformedDelivery(reason: "the body is not valid JSON")
            }
            value = Self.value(of: object)
        }
        guard case .object(let object) = value else { throw MalformedDelivery(reason: "the body is not a JSON object") }
        root = object
    }

    /// `JSONSerialization`'s objects as `JSONValue`s: integers within Int64 as integers, every other
    /// number as a decimal.
    private static func value(of object: Any) -> JSONValue {
        switch object {
        case let text as String: return .string(text)
        case let number as NSNumber:
            switch String(cString: number.objCType) {
            case "c", "B": return .bool(number.boolValue)
            case "q", "l", "i", "s": return .integer(number.int64Value)
            case "Q", "L", "I", "S":
                return number.uint64Value <= UInt64(Int64.max) ? .integer(number.int64Value) : .number(Decimal(number.uint64Value))
            default: return .number(Decimal(number.doubleValue))
            }
        case let array as [Any]: return .array(array.map(value(of:)))
        case let dictionary as [String: Any]: return .object(dictionary.mapValues(value(of:)))
        default: return .null
        }
    }

    /// The value at a dotted path; `nil` when absent or `null`.
    func value(_ path: String) -> JSONValue? {
        var current: JSONValue? = .object(root)
        for key in path.split(separator: ".") {
            current = current?.objectValue?[String(key)]
        }
        if case .null? = current { return nil }
        return current
    }

    /// Whether the path holds a value other than `null`.
    func has(_ path: String) -> Bool {
        if case .some = value(path) { true } else { false }
    }

    /// A non-empty string of at most `maximumLength` UTF-8 bytes.
    func string(_ path: String, maximumLength: Int = 4096) throws(MalformedDelivery) -> String {
        guard let text = try optionalString(path, maximumLength: maximumLength), !text.isEmpty else {
            throw MalformedDelivery(reason: "\(path) must be a non-empty string")
        }
        return text
    }

    /// A string or nothing. Postgres text cannot hold U+0000, and stored values are bounded, so a
    /// string with NUL or longer than `maximumLength` UTF-8 bytes is malformed, like a wrong type.
    func optionalString(_ path: String, maximumLength: Int = 4096) throws(MalformedDelivery) -> String? {
        guard let value = value(path) else { return nil }
        guard case .string(let text) = value else { throw MalformedDelivery(reason: "\(path) must be a string") }
        guard !text.unicodeScalars.contains("\u{0}") else { throw MalformedDelivery(reason: "\(path) must not contain NUL characters") }
        guard text.utf8.count <= maximumLength else { throw MalformedDelivery(reason: "\(path) must be at most \(maximumLength) bytes") }
        return text
    }

    /// A provider's reference (e.g. `pi_...`): at most 255 bytes, like every id Stripe issues.
    func reference(_ path: String) throws(MalformedDelivery) -> String {
        try string(path, maximumLength: 255)
    }

    func integer(_ path: String) throws(MalformedDelivery) -> Int64 {
        guard case .integer(let integer)? = value(path) else { throw MalformedDelivery(reason: "\(path) must be an integer") }
        return integer
    }

    /// A JSON boolean, or nil when absent or `null`.
    func optionalBoolean(_ path: String) throws(MalformedDelivery) -> Bool? {
        guard let value = value(path) else { return nil }
        guard case .bool(let flag) = value else { throw MalformedDelivery(reason: "\(path) must be true or false") }
        return flag
    }

    /// `amountPath` (non-negative minor units) in the currency at `currencyPath`: any case from a
    /// provider (Stripe sends lower case), upper case only when `upperCaseOnly` (our own contract).
    func money(amount amountPath: String, currency currencyPath: String, upperCaseOnly: Bool = false) throws(MalformedDelivery) -> Money {
        let amount = try integer(amountPath)
        guard amount >= 0 else { throw MalformedDelivery(reason: "\(amountPath) must not be negative") }
        let code = try string(currencyPath, maximumLength: 3)
        guard !upperCaseOnly || code == code.uppercased() else {
            throw MalformedDelivery(reason: "\(currencyPath) must be an upper-case ISO 4217 code")
        }
        do {
            return Money(amount: amount, currency: try Currency(code))
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
        guard case .string(let text) = value, let uuid = UUID(uuidString: text) else {
            throw MalformedDelivery(reason: "\(path) must be a UUID or null")
        }
        return uuid
    }

    /// A UUID at `path` when there is one; anything else (absent, not a UUID) is `nil`. For metadata a
    /// provider echoes back, where a foreign value must not stop a real payment from flowing on.
    func lenientUUID(_ path: String) -> UUID? {
        value(path)?.stringValue.flatMap(UUID.init(uuidString:))
    }
}
