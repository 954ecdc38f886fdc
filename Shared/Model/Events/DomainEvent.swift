import Foundation

/// A typed event payload: the `data` of an ``EventEnvelope`` of type ``eventType``.
///
/// Conformers guarantee that their JSON uses the snake_case field names of DESIGN.md's event
/// table (explicit `CodingKeys`), encode absent optionals as explicit `null`, accept both `null`
/// and a missing key when decoding, put money as an integer `amount` beside a `currency`, and
/// write timestamps as RFC 3339.
///
/// Versioning: a type's fields may be added to (new optional fields, with ``version`` raised),
/// never renamed or repurposed; an incompatible change is a new ``eventType``.
public protocol DomainEvent: Codable, Sendable {
    /// The envelope `type` string, e.g. `booking.confirmed`. Unique across all event types.
    static var eventType: String { get }
    /// The schema version written into the envelope's `version`.
    static var version: Int { get }
    /// The envelope's `aggregate_id`: the booking id, or the provider reference when no booking
    /// is known. Consumers order work per aggregate by this value.
    var aggregateID: String { get }
}
