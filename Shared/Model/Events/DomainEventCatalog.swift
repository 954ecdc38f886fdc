import Foundation

/// The catalogue of every event type defined in this module.
public enum DomainEventCatalog {
    /// Every ``DomainEvent`` type, one per distinct `type` string.
    public static var all: [any DomainEvent.Type] {
        [
            BookingRequested.self, PaymentRequested.self, PaymentIntentCreated.self, BookingConfirmed.self,
            BookingCancelled.self, BookingExpired.self, PaymentSucceeded.self, PaymentFailed.self,
            RefundRequested.self, RefundSucceeded.self, RefundFailed.self, PayoutCreated.self, PayoutPaid.self, PayoutFailed.self,
            DeadLetterRecorded.self, EndpointDisabled.self, EventCancelled.self, PaymentDisputed.self, PaymentDisputeClosed.self,
        ]
    }

    /// The event type for an envelope `type` string, or `nil` when this module does not define it.
    public static func type(named eventType: String) -> (any DomainEvent.Type)? {
        all.first { $0.eventType == eventType }
    }
}
