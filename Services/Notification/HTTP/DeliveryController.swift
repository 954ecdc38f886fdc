import Foundation
import Hummingbird
import ServiceKit
import SharedModel

/// `GET /v1/deliveries/{id}` (with its attempts) and `POST /v1/deliveries/{id}/retry` (due now; a
/// failed or succeeded delivery is sent again). Admin only.
struct DeliveryController: Sendable {
    let deliveries: DeliveryRepository
    let clock: WallClock
    let wake: @Sendable () -> Void

    func addRoutes(to router: Router<ServiceRequestContext>, admin: AuthenticationMiddleware) {
        let group = router.group("/v1/deliveries").add(middleware: admin)
        group.get("/{id}") { _, context -> Response in
            let id = try EndpointController.id(context, resource: "delivery")
            return try .json(try EndpointController.found(try await deliveries.delivery(id), resource: "delivery"))
        }
        group.post("/{id}/retry") { request, context -> Response in
            let id = try EndpointController.id(context, resource: "delivery")
            let audit = EndpointController.audit(request, context, action: "delivery.retried", id: id, outcome: "retried", status: .accepted)
            let delivery = try EndpointController.found(try await deliveries.retry(id, now: clock.now(), audit: audit), resource: "delivery")
            wake()
            return try .json(delivery, status: .accepted)
        }
    }
}
