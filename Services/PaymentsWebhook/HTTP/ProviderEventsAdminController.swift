import Foundation
import Hummingbird
import Messaging
import ServiceKit

/// Operator lookups of stored deliveries (admin token only):
///
/// - `GET /v1/admin/payment-events/{id}`: one stored delivery, raw body included;
/// - `GET /v1/admin/payment-events` with filters `booking_id`, `provider` (`stripe`, `internal`),
///   `provider_event_id`, `provider_ref`, `status` (`accepted`, `ignored`, `malformed`), `type`,
///   `from`, `until` (RFC 3339, on the receive time), `cursor`, `limit` (1-500); newest first.
struct ProviderEventsAdminController: Sendable {
    let store: ProviderEventStore

    func addRoutes(to router: Router<ServiceRequestContext>, admin: AuthenticationMiddleware) {
        let group = router.group("/v1/admin/payment-events").add(middleware: admin)
        group.get { request, _ -> Response in
            let query = QueryFilter(request)
            let filter = ProviderEventStore.Filter(
                provider: try query.choice("provider", as: PaymentSource.self),
                providerEventID: try query.text("provider_event_id"),
                bookingID: try query.uuid("booking_id"),
                providerRef: try query.text("provider_ref"),
                status: try query.choice("status", as: ProviderEventStatus.self),
                eventType: try query.text("type"),
                from: try query.timestamp("from"),
                until: try query.timestamp("until"))
            do {
                let page = try await store.list(filter, cursor: try query.text("cursor"), limit: try query.limit())
                return try .json(ListPage("events", items: page.events, nextCursor: page.nextCursor))
            } catch is InvalidCursor {
                throw APIError.invalidCursor
            }
        }
        group.get("/{id}") { _, context -> Response in
            // A malformed id names no resource: 404, like an unknown one.
            guard let text = context.parameters.get("id"), let id = UUID(uuidString: text), let event = try await store.event(id: id) else {
                throw APIError.notFound("no stored payment event with this id")
            }
            return try .json(event)
        }
    }

}
