import Foundation

/// `dead_letter.recorded`: an event could not be processed (`failure`) or needs a person (`review`);
/// announced on `stream:dead-letters` for alerting. The entry itself lives in Postgres.
public struct DeadLetterRecorded: DomainEvent, Hashable {
    /// `dead_letter.recorded`.
    public static var eventType: String { "dead_letter.recorded" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The dead letter's id.
    public let deadLetterID: UUID
    /// `failure` or `review`.
    public let kind: String
    /// The stream the event came from.
    public let stream: String
    /// The consumer group that gave up on it.
    public let consumer: String
    /// The dead-lettered event's id and type.
    public let eventID: UUID
    public let eventType: String
    /// The event's aggregate (usually a booking id), to find related entries.
    public let eventAggregateID: String
    /// Why, as the handler reported it.
    public let error: String

    /// Creates the event.
    public init(
        deadLetterID: UUID, kind: String, stream: String, consumer: String, eventID: UUID, eventType: String, eventAggregateID: String,
        error: String
    ) {
        self.deadLetterID = deadLetterID
        self.kind = kind
        self.stream = stream
        self.consumer = consumer
        self.eventID = eventID
        self.eventType = eventType
        self.eventAggregateID = eventAggregateID
        self.error = error
    }

    /// The dead letter's id.
    public var aggregateID: String { deadLetterID.lowercasedString }

    private enum CodingKeys: String, CodingKey {
        case deadLetterID = "dead_letter_id"
        case kind, stream, consumer
        case eventID = "event_id"
        case eventType = "event_type"
        case eventAggregateID = "event_aggregate_id"
        case error
    }
}
