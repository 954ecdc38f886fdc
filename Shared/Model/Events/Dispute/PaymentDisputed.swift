import Foundation

/// `payment.disputed`: the customer disputed a payment with their bank (Stripe
/// `charge.dispute.created`, and `charge.dispute.funds_withdrawn`, which reports the same dispute
/// again). The disputed amount is withdrawn from the platform until the dispute closes. Consumers key
/// on ``disputeRef``, so the two reports of one dispute (in either order) open it once.
public struct PaymentDisputed: DomainEvent, Hashable {
    /// `payment.disputed`.
    public static var eventType: String { "payment.disputed" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The dispute: the provider's event, its dispute id and the payment it disputes.
    public let dispute: DisputeDetails

    /// Creates the event.
    public init(dispute: DisputeDetails) { self.dispute = dispute }

    /// The booking id, or the provider reference when no booking is known.
    public var aggregateID: String { dispute.aggregateID }

    /// Decodes the wire form (the dispute's fields at the top level).
    public init(from decoder: any Decoder) throws { dispute = try DisputeDetails(from: decoder) }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws { try dispute.encode(to: encoder) }
}

/// `payment.dispute_closed`: a dispute ended (Stripe `charge.dispute.closed`). ``outcome`` `won`
/// returns the disputed amount to the platform; `lost` leaves it with the customer, and the payout
/// ledger debits the host by it.
public struct PaymentDisputeClosed: DomainEvent, Hashable {
    /// `payment.dispute_closed`.
    public static var eventType: String { "payment.dispute_closed" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The dispute, as the closing event reports it (``DisputeDetails/status`` is the provider's final status).
    public let dispute: DisputeDetails
    /// What the closing means for the money (wire: `outcome`).
    public let outcome: DisputeOutcome

    /// Creates the event.
    public init(dispute: DisputeDetails, outcome: DisputeOutcome) {
        self.dispute = dispute
        self.outcome = outcome
    }

    /// The booking id, or the provider reference when no booking is known.
    public var aggregateID: String { dispute.aggregateID }

    private enum CodingKeys: String, CodingKey { case outcome }

    /// Decodes the wire form (the dispute's fields and `outcome` at the top level).
    public init(from decoder: any Decoder) throws {
        dispute = try DisputeDetails(from: decoder)
        outcome = try decoder.container(keyedBy: CodingKeys.self).decode(DisputeOutcome.self, forKey: .outcome)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        try dispute.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(outcome, forKey: .outcome)
    }
}

/// How a dispute ended for the money.
public enum DisputeOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    /// The platform keeps the payment (Stripe `won`, and `warning_closed`: an inquiry that never became a chargeback).
    case won
    /// The customer keeps the disputed amount (Stripe `lost`).
    case lost
}

/// What the dispute events carry about a dispute.
public struct DisputeDetails: Sendable, Hashable, Codable {
    /// The provider's event id (deduplicated per provider).
    public let paymentEventID: PaymentEventID
    /// The payment provider, e.g. `stripe`.
    public let provider: String
    /// The provider's id of the dispute (Stripe `dp_...`); one dispute per id, whatever reports it.
    public let disputeRef: String
    /// The provider's reference of the disputed payment (Stripe `payment_intent`).
    public let providerRef: String
    /// The booking that payment paid for, `nil` when the platform knows no such payment.
    public let bookingID: BookingID?
    /// The disputed amount: all or part of the payment (wire: `amount` + `currency`).
    public let amount: Money
    /// The customer's reason as the provider gives it (e.g. `fraudulent`).
    public let reason: String?
    /// The provider's status of the dispute when the event was sent (e.g. `needs_response`, `lost`).
    public let status: String
    /// When the provider created the event.
    public let providerCreatedAt: Date

    /// Creates the details.
    public init(
        paymentEventID: PaymentEventID, provider: String, disputeRef: String, providerRef: String, bookingID: BookingID?, amount: Money,
        reason: String?, status: String, providerCreatedAt: Date
    ) {
        self.paymentEventID = paymentEventID
        self.provider = provider
        self.disputeRef = disputeRef
        self.providerRef = providerRef
        self.bookingID = bookingID
        self.amount = amount
        self.reason = reason
        self.status = status
        self.providerCreatedAt = providerCreatedAt
    }

    /// The booking id, or the payment's provider reference when no booking is known.
    public var aggregateID: String { bookingID?.description ?? providerRef }

    private enum CodingKeys: String, CodingKey {
        case paymentEventID = "payment_event_id"
        case provider
        case disputeRef = "dispute_ref"
        case providerRef = "provider_ref"
        case bookingID = "booking_id"
        case amount
        case currency
        case reason
        case status
        case providerCreatedAt = "provider_created_at"
    }

    /// Decodes the wire form; `booking_id` and `reason` may be `null` or absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        paymentEventID = try container.decode(PaymentEventID.self, forKey: .paymentEventID)
        provider = try container.decode(String.self, forKey: .provider)
        disputeRef = try container.decode(String.self, forKey: .disputeRef)
        providerRef = try container.decode(String.self, forKey: .providerRef)
        bookingID = try container.decodeIfPresent(BookingID.self, forKey: .bookingID)
        amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        status = try container.decode(String.self, forKey: .status)
        providerCreatedAt = try container.decodeTimestamp(forKey: .providerCreatedAt)
    }

    /// Encodes the wire form; a missing booking id or reason is an explicit `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(paymentEventID, forKey: .paymentEventID)
        try container.encode(provider, forKey: .provider)
        try container.encode(disputeRef, forKey: .disputeRef)
        try container.encode(providerRef, forKey: .providerRef)
        try container.encodeNullable(bookingID, forKey: .bookingID)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encodeNullable(reason, forKey: .reason)
        try container.encode(status, forKey: .status)
        try container.encodeTimestamp(providerCreatedAt, forKey: .providerCreatedAt)
    }
}
