import Foundation

/// Why an ``EventEnvelope`` could not be built from, or decoded into, a typed event.
public enum EnvelopeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The envelope's `type` is not the one the caller asked to decode.
    case typeMismatch(expected: String, actual: String)
    /// The envelope's `data` does not decode as the expected event type (missing field, wrong
    /// type, invalid identifier, ...). Holds the event type and the decoder's explanation.
    case invalidData(eventType: String, reason: String)

    /// A one-line explanation for logs and dead letters.
    public var description: String {
        switch self {
        case .typeMismatch(let expected, let actual): "expected event type \(expected) but the envelope is \(actual)"
        case .invalidData(let eventType, let reason): "invalid data for \(eventType): \(reason)"
        }
    }
}
