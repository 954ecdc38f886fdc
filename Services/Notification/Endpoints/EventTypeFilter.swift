/// Which events subscribers can receive, and which of them an endpoint subscribed to (DESIGN.md,
/// Notification). Pure: the fan-out's SQL applies the same rule, and tests hold the two together.
enum EventTypeFilter {
    /// Every deliverable type. Never `booking.requested`, `payment.requested` or
    /// `payment.intent_created`: they carry payment details (the intent's client secret) meant for the
    /// customer's payment page alone; the payment events are the payments service's inner workings
    /// and reach subscribers as their booking's outcome.
    static let deliverableTypes: [String] = [
        "booking.confirmed", "booking.cancelled", "booking.expired",
        "refund.requested", "refund.succeeded", "refund.failed",
        "payout.created", "payout.paid", "payout.failed",
        "notification.endpoint_disabled",
        "dead_letter.recorded",
        "event.cancelled",
        "payment.disputed", "payment.dispute_closed",
    ]

    /// Whether events of `type` are ever delivered. New types of a deliverable family (`booking.*`,
    /// `refund.*`, `payout.*`, `notification.*`, `event.*`) are deliverable when they appear, except
    /// the three named above. Of the payment events, only the disputes are delivered: a host needs to
    /// know that a customer disputed a payment, and what came of it.
    static func isDeliverable(_ type: String) -> Bool {
        if ["booking.requested", "payment.requested", "payment.intent_created"].contains(type) { return false }
        if ["dead_letter.recorded", "payment.disputed", "payment.dispute_closed"].contains(type) { return true }
        return ["booking.", "refund.", "payout.", "notification.", "event."].contains { type.hasPrefix($0) && type.count > $0.count }
    }

    /// Whether an endpoint subscribed to `subscriptions` (empty: everything) receives `type`.
    static func matches(_ type: String, subscriptions: [String]) -> Bool {
        guard isDeliverable(type) else { return false }
        if subscriptions.isEmpty { return true }
        return subscriptions.contains { pattern in
            if pattern == "*" { return true }
            if pattern.hasSuffix(".*") { return type.hasPrefix(pattern.dropLast()) }
            return pattern == type
        }
    }

    /// Why `pattern` is not a subscription, or nil when it is one: `*`, an exact deliverable type,
    /// or a prefix `family.*` that names at least one deliverable type.
    static func problem(with pattern: String) -> String? {
        if pattern == "*" { return nil }
        if pattern.hasSuffix(".*") {
            let prefix = pattern.dropLast()
            guard prefix.count > 1, deliverableTypes.contains(where: { $0.hasPrefix(prefix) }) else {
                return "'\(pattern)' matches no deliverable event type"
            }
            return nil
        }
        guard deliverableTypes.contains(pattern) else {
            return "'\(pattern)' is not a deliverable event type (\(deliverableTypes.joined(separator: ", ")), or a prefix such as booking.*)"
        }
        return nil
    }
}
