import Foundation

/// The one envelope every event travels in (DESIGN.md, "Messaging").
///
/// `data` is kept as an untyped ``JSONValue``: a consumer routes on ``type`` and decodes only
/// the types it handles (``decode(_:)``); an envelope of a type this module does not know
/// decodes and re-encodes to the same JSON, so it can be stored, dead-lettered and republished.
///
/// Wire form (keys always present, `causation_id` may be `null`):
/// `{"id", "type", "version", "occurred_at", "aggregate_id", "sequence", "correlation_id",
/// "causation_id", "producer", "data"}`.
public struct EventEnvelope: Hashable, Sendable {
    /// Unique id of this envelope; consumers' inboxes deduplicate on it.
    public let id: EnvelopeID
    /// The event type, e.g. `booking.confirmed`.
    public let type: String
    /// The schema version of ``data`` for ``type``.
    public let version: Int
    /// When the event happened (UTC instant; RFC 3339 on the wire).
    public let occurredAt: Date
    /// The booking id, or the provider reference when no booking is known.
    public let aggregateID: String
    /// Increasing per producer and aggregate.
    public let sequence: Int64
    /// The request or flow this event belongs to (from `X-Request-Id`, or created), carried through.
    public let correlationID: String
    /// The id of the event or request that caused this one; `nil` for an origin event.
    public let causationID: String?
    /// The service that published the event.
    public let producer: EventProducer
    /// The event payload, undecoded.
    public let data: JSONValue

    /// An envelope with the given fields, as read from storage or built for an unknown type.
    public init(
        id: EnvelopeID = EnvelopeID(),
        type: String,
        version: Int,
        occurredAt: Date,
        aggregateID: String,
        sequence: Int64,
        correlationID: String,
        causationID: String?,
        producer: EventProducer,
        data: JSONValue
    ) {
        self.id = id
        self.type = type
        self.version = version
        self.occurredAt = occurredAt
        self.aggregateID = aggregateID
        self.sequence = sequence
        self.correlationID = correlationID
        self.causationID = causationID
        self.producer = producer
        self.data = data
    }
}

extension EventEnvelope: Codable {
    private enum CodingKeys: String, CodingKey {
        case id
        case type
        case version
        case occurredAt = "occurred_at"
        case aggregateID = "aggregate_id"
        case sequence
        case correlationID = "correlation_id"
        case causationID = "causation_id"
        case producer
        case data
    }

    /// Decodes an envelope; `occurred_at` may carry any RFC 3339 offset, `causation_id` may be
    /// `null` or absent, `type` must be non-empty and `version` at least 1.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decode(EnvelopeID.self, forKey: .id)
        self.type = try container.decode(String.self, forKey: .type)
        guard !type.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "type must not be empty")
        }
        self.version = try container.decode(Int.self, forKey: .version)
        guard version >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: container, debugDescription: "version must be at least 1")
        }
        self.occurredAt = try container.decodeTimestamp(forKey: .occurredAt)
        self.aggregateID = try container.decode(String.self, forKey: .aggregateID)
        self.sequence = try container.decode(Int64.self, forKey: .sequence)
        self.correlationID = try container.decode(String.self, forKey: .correlationID)
        self.causationID = try container.decodeIfPresent(String.self, forKey: .causationID)
        self.producer = try container.decode(EventProducer.self, forKey: .producer)
        self.data = try container.decode(JSONValue.self, forKey: .data)
    }

    /// Encodes every key, `causation_id` as `null` when absent, `occurred_at` in UTC.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(type, forKey: .type)
        try container.encode(version, forKey: .version)
        try container.encodeTimestamp(occurredAt, forKey: .occurredAt)
        try container.encode(aggregateID, forKey: .aggregateID)
        try container.encode(sequence, forKey: .sequence)
        try container.encode(correlationID, forKey: .correlationID)
        try container.encodeNullable(causationID, forKey: .causationID)
        try container.encode(producer, forKey: .producer)
        try container.encode(data, forKey: .data)
    }
}

extension EventEnvelope {
    /// The envelope as platform JSON (sorted keys), ready for `XADD` or the outbox.
    public func jsonData() throws -> Data {
        try JSONEncoder.platform.encode(self)
    }

    /// Decodes an envelope from JSON bytes with the platform decoder.
    public init(jsonData: Data) throws {
        self = try JSONDecoder.platform.decode(EventEnvelope.self, from: jsonData)
    }
}
