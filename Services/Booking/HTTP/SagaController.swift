import Foundation
import Hummingbird
import Messaging
import ServiceKit
import SharedModel

/// The saga's routes:
///
/// - `GET /v1/bookings/{id}/saga`: a booking's saga - state, deadline, version, attempts, last error -
///   and its step log (each forward step and compensation with its time and outcome), oldest first.
/// - `GET /v1/admin/sagas` (admin): sagas by `state` and/or `overdue=true`, most recently changed
///   first (`cursor`, `limit`), with every state's count and overdue count.
/// - `POST /v1/admin/sagas/{id}/resume` (admin, `X-Operator`): resumes a `compensation_failed` saga
///   (409 in any other state) and answers the saga.
struct SagaController: Sendable {
    let operations: SagaOperations

    func addRoutes(to router: Router<ServiceRequestContext>, client: some RouterMiddleware<ServiceRequestContext>, admin: AuthenticationMiddleware) {
        router.group("/v1/bookings").add(middleware: client).get("/{id}/saga") { request, context -> Response in
            let id = BookingID(try Validation.pathUUID(context, resource: "booking"))
            // Like the booking itself: another client's booking, or another customer's when one is named, is 404.
            let client = context.principal == .admin ? nil : context.principal?.id ?? "anonymous"
            let customer = try Validation.customerFilter(request)
            guard let saga = try await operations.saga(id, client: client, customer: customer) else {
                throw APIError.notFound("no booking with this id")
            }
            return try .json(saga)
        }
        let sagas = router.group("/v1/admin/sagas").add(middleware: admin)
        sagas.get { request, _ -> Response in
            let query = QueryFilter(request)
            let filter = SagaOperations.Filter(state: try query.choice("state", as: SagaState.self), overdue: try query.flag("overdue") == true)
            return try .json(try await operations.list(filter, cursor: try query.cursor(), limit: try query.limit()))
        }
        sagas.post("/{id}/resume") { request, context -> Response in
            let id = BookingID(try Validation.pathUUID(context, resource: "saga"))
            let operatorName = try DeadLetterRoutes.operatorName(request)
            let audit = AuditRecord.http(
                service: "booking", request, context, action: "saga.resumed", targetID: id.uuid.lowercasedString, outcome: "resumed",
                operatorName: operatorName)
            switch try await operations.resume(id, operatorName: operatorName, audit: audit) {
            case .notFound:
                throw APIError.notFound("no saga with this id")
            case .notResumable(let state):
                throw APIError.conflict(
                    .conflict, "only a compensation_failed saga can be resumed; this one is \(state.rawValue)",
                    details: ["state": .string(state.rawValue)])
            case .resumed:
                guard let saga = try await operations.saga(id) else { throw APIError.notFound("no saga with this id") }
                return try .json(saga)
            }
        }
    }
}
