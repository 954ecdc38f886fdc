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
    fileprivate enum CodingKeys: String, CodingKey {
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
    /// The envelope as platform JSON (sorted keys), ready for `XADD` or the outbox: the bytes
    /// `JSONEncoder.platform` writes for it, written directly (several times faster; tested equal).
    public func jsonData() throws -> Data {
        Data(jsonBytes())
    }

    /// ``jsonData()`` as bytes.
    public func jsonBytes() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        func key(_ name: String, first: Bool = false) {
            if !first { output.append(UInt8(ascii: ",")) }
            JSONValue.writeString(name, to: &output)
            output.append(UInt8(ascii: ":"))
        }
        output.append(UInt8(ascii: "{"))
        key(CodingKeys.aggregateID.rawValue, first: true)
        JSONValue.writeString(aggregateID, to: &output)
        key(CodingKeys.causationID.rawValue)
        if let causationID { JSONValue.writeString(causationID, to: &output) } else { output.append(contentsOf: "null".utf8) }
        key(CodingKeys.correlationID.rawValue)
        JSONValue.writeString(correlationID, to: &output)
        key(CodingKeys.data.rawValue)
        data.writeJSON(to: &output)
        key(CodingKeys.id.rawValue)
        JSONValue.writeString(id.description, to: &output)
        key(CodingKeys.occurredAt.rawValue)
        JSONValue.writeString(RFC3339.string(from: occurredAt), to: &output)
        key(CodingKeys.producer.rawValue)
        JSONValue.writeString(producer.rawValue, to: &output)
        key(CodingKeys.sequence.rawValue)
        output.append(contentsOf: String(sequence).utf8)
        key(CodingKeys.type.rawValue)
        JSONValue.writeString(type, to: &output)
        key(CodingKeys.version.rawValue)
        output.append(contentsOf: String(version).utf8)
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// Decodes an envelope from JSON bytes, with the rules of ``init(from:)``. Well-formed envelopes
    /// take a direct path; anything it does not accept is decoded by the platform decoder, so errors
    /// (and numbers it does not keep exactly) are exactly the decoder's.
    public init(jsonData: Data) throws {
        if let envelope = EventEnvelope(fastParsing: jsonData) {
            self = envelope
            return
        }
        self = try JSONDecoder.platform.decode(EventEnvelope.self, from: jsonData)
    }

    private init?(fastParsing bytes: Data) {
        guard case .object(let fields)? = JSONValue(fastParsing: bytes),
            let idText = fields[CodingKeys.id.rawValue]?.stringValue, let id = try? EnvelopeID(parsing: idText),
            let type = fields[CodingKeys.type.rawValue]?.stringValue, !type.isEmpty,
            let version = fields[CodingKeys.version.rawValue]?.integerValue, version >= 1, let versionInt = Int(exactly: version),
            let occurredText = fields[CodingKeys.occurredAt.rawValue]?.stringValue, let occurredAt = try? RFC3339.date(from: occurredText),
            let aggregateID = fields[CodingKeys.aggregateID.rawValue]?.stringValue,
            let sequence = fields[CodingKeys.sequence.rawValue]?.integerValue,
            let correlationID = fields[CodingKeys.correlationID.rawValue]?.stringValue,
            let producer = fields[CodingKeys.producer.rawValue]?.stringValue,
            let data = fields[CodingKeys.data.rawValue]
        else { return nil }
        let causationID: String?
        switch fields[CodingKeys.causationID.rawValue] {
        case nil, .null?: causationID = nil
        case .string(let text)?: causationID = text
        default: return nil
        }
        self.init(
            id: id, type: type, version: versionInt, occurredAt: occurredAt, aggregateID: aggregateID, sequence: sequence,
            correlationID: correlationID, causationID: causationID, producer: EventProducer(rawValue: producer), data: data)
    }
}
