import Foundation

extension EventEnvelope {
    /// Wraps a typed event: `type`, `version` and `aggregate_id` come from the event, `data` is
    /// its JSON. Throws ``EnvelopeError/invalidData(eventType:reason:)`` if it cannot be encoded.
    public init<Event: DomainEvent>(
        event: Event,
        id: EnvelopeID = EnvelopeID(),
        occurredAt: Date,
        sequence: Int64,
        correlationID: String,
        causationID: String?,
        producer: EventProducer
    ) throws(EnvelopeError) {
        let data: JSONValue
        do {
            data = try JSONValueEncoder.encode(event)
        } catch {
            throw .invalidData(eventType: Event.eventType, reason: String(describing: error))
        }
        self.init(
            id: id,
            type: Event.eventType,
            version: Event.version,
            occurredAt: occurredAt,
            aggregateID: event.aggregateID,
            sequence: sequence,
            correlationID: correlationID,
            causationID: causationID,
            producer: producer,
            data: data
        )
    }

    /// Wraps a typed event caused by `cause`: same correlation id, causation id = `cause.id`.
    public init<Event: DomainEvent>(
        event: Event,
        causedBy cause: EventEnvelope,
        id: EnvelopeID = EnvelopeID(),
        occurredAt: Date,
        sequence: Int64,
        producer: EventProducer
    ) throws(EnvelopeError) {
        try self.init(
            event: event,
            id: id,
            occurredAt: occurredAt,
            sequence: sequence,
            correlationID: cause.correlationID,
            causationID: cause.id.description,
            producer: producer
        )
    }

    /// Whether this envelope carries an `Event` (its `type` equals `Event.eventType`).
    public func isEvent<Event: DomainEvent>(_ event: Event.Type) -> Bool {
        type == Event.eventType
    }

    /// Decodes ``data`` as `Event`.
    ///
    /// Throws ``EnvelopeError/typeMismatch(expected:actual:)`` when ``type`` is not
    /// `Event.eventType` (the data is never reinterpreted as another type), and
    /// ``EnvelopeError/invalidData(eventType:reason:)`` when the data does not decode. A newer
    /// ``version`` than `Event.version` is accepted: versions only add fields.
    public func decode<Event: DomainEvent>(_ event: Event.Type) throws(EnvelopeError) -> Event {
        guard type == Event.eventType else {
            throw .typeMismatch(expected: Event.eventType, actual: type)
        }
        do {
            return try JSONValueDecoder.decode(Event.self, from: data)
        } catch {
            throw .invalidData(eventType: type, reason: String(describing: error))
        }
    }
}
