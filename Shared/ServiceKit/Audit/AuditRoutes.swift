import Foundation
import HTTPTypes
import Hummingbird
import Messaging
import SharedModel

extension AuditRecord {
    /// The record of an admin request: operator from `X-Operator` (else `admin`), the correlation id,
    /// and the route as `METHOD /template` (e.g. `POST /v1/endpoints/{id}/pause`).
    public static func http(
        service: String, _ request: Request, _ context: ServiceRequestContext, action: String, targetID: String?, outcome: String = "succeeded",
        status: HTTPResponse.Status = .ok, details: [String: JSONValue] = [:], operatorName: String? = nil
    ) -> AuditRecord {
        AuditRecord(
            service: service, operatorName: operatorName ?? AuditRoutes.operatorName(request), requestID: context.correlationID,
            route: "\(request.method.rawValue) \(context.endpointPath ?? request.uri.path)", action: action, targetID: targetID,
            outcome: outcome, httpStatus: status.code, details: details)
    }
}

/// `GET /v1/admin/audit` (admin token), mounted by every service next to the dead-letter routes: the
/// audit log newest first, this service's entries unless `service` names another (`service=*`: all).
/// Filters `operator`, `action`, `target_id`, `from`, `until` (RFC 3339), `limit` (1-200, default 50)
/// and `cursor`; a bad filter is 400, like the dead-letter listing.
public enum AuditRoutes {
    public static func add(to router: Router<ServiceRequestContext>, log: AuditLog, service: String, authentication: AuthenticationMiddleware) {
        router.group("/v1/admin/audit").add(middleware: authentication).get { request, _ -> Response in
            let query = QueryFilter(request)
            var filter = AuditLog.Filter()
            let named = try query.text("service")
            filter.service = named == "*" ? nil : named ?? service
            filter.operatorName = try query.text("operator")
            filter.action = try query.text("action")
            filter.targetID = try query.text("target_id")
            filter.from = try query.timestamp("from")
            filter.until = try query.timestamp("until")
            let limit = try query.limit(default: 50, in: 1...200)
            let page = try await log.list(filter, after: try query.cursor(), limit: limit)
            return try Response.json(ListPage("entries", items: page.entries, nextCursor: page.nextCursor))
        }
    }

    /// The operator of an admin action: `X-Operator` when given (trimmed, at most 200 characters),
    /// else `admin`. Routes that require the header read it with ``DeadLetterRoutes/operatorName(_:)``.
    public static func operatorName(_ request: Request) -> String {
        guard let name = request.headers[.operatorName]?.trimmingCharacters(in: .whitespaces), !name.isEmpty else { return "admin" }
        return String(name.prefix(AuditLog.maximumOperatorLength))
    }
}
