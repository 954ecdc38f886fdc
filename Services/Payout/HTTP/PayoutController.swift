import Foundation
import Hummingbird
import Messaging
import NIOCore
import ServiceKit
import SharedModel

/// The payout API (DESIGN.md, Payout; every route admin-only): hosts' payout settings and balances,
/// their payouts, and runs with their reports.
struct PayoutController: Sendable {
    let parts: PayoutParts

    func addRoutes(to router: Router<ServiceRequestContext>, admin: AuthenticationMiddleware) {
        let hosts = router.group("/v1/hosts").add(middleware: admin)
        hosts.put("/{id}") { request, context -> Response in
            let hostID = try Self.hostID(request, context)
            let body = try await request.decode(as: HostBody.self, context: context)
            try Self.check(body)
            let audit = AuditRecord.http(service: "payout", request, context, action: "host.updated", targetID: hostID.description)
            let host = try await HostStore.put(
                hostID.description, account: body.payoutAccount, feeBasisPoints: body.feeBasisPoints, now: parts.clock.now(), audit: audit,
                on: parts.app.postgres)
            return try .json(HostWire(host))
        }
        hosts.get("/{id}/balance") { request, context -> Response in
            let hostID = try Self.hostID(request, context).description
            guard try await HostStore.exists(hostID, on: parts.app.postgres) else { throw APIError.notFound("no host with this id") }
            let balances = try await HostStore.balances(
                of: hostID, now: parts.clock.now(), settlementDelay: parts.configuration.run.settlementDelay, on: parts.app.postgres)
            return try .json(BalancesWire(hostID: hostID, balances: balances.map(BalanceWire.init)))
        }
        hosts.get("/{id}/payouts") { request, context -> Response in
            let hostID = try Self.hostID(request, context).description
            let query = QueryFilter(request)
            let (cursor, limit) = (try query.cursor(), try query.limit())
            guard try await HostStore.exists(hostID, on: parts.app.postgres) else { throw APIError.notFound("no host with this id") }
            let page = try await PayoutStore.payouts(host: hostID, after: cursor, limit: limit, on: parts.app.postgres)
            return try .json(ListPage("payouts", items: page.rows.map(PayoutWire.init), nextCursor: page.nextCursor))
        }
        let payouts = router.group("/v1/payouts").add(middleware: admin)
        // Across hosts: what an operator looks for after PayoutTransfersRefused fires (`status=failed`).
        payouts.get { request, _ -> Response in
            let query = QueryFilter(request)
            let status = try query.choice("status", as: PayoutStatus.self)
            let runID = try query.uuid("run_id")
            let hostID = try query.text("host_id")
            let (cursor, limit) = (try query.cursor(), try query.limit())
            let page = try await PayoutStore.payouts(
                host: hostID, run: runID, status: status, after: cursor, limit: limit, on: parts.app.postgres)
            return try .json(ListPage("payouts", items: page.rows.map(PayoutWire.init), nextCursor: page.nextCursor))
        }
        payouts.get("/{id}") { _, context -> Response in
            let id = try Self.uuid(context, resource: "payout")
            guard let payout = try await PayoutStore.payout(id, on: parts.app.postgres) else { throw APIError.notFound("no payout with this id") }
            return try .json(PayoutWire(payout))
        }

        let runs = router.group("/v1/payout-runs").add(middleware: admin)
        runs.post { request, context -> Response in
            let body = try await request.decodeIfPresent(as: RunBody.self, context: context)
            let started: (run: PayoutRun, created: Bool)
            do {
                let audit = AuditRecord.http(service: "payout", request, context, action: "payout_run.started", targetID: nil, status: .accepted)
                started = try await parts.runner.start(
                    try body?.runDate.map { text throws(RunDate.Problem) in try RunDate(parsing: text) }, audit: audit)
            } catch let problem as RunDate.Problem {
                throw APIError.unprocessable(.validationFailed, problem.description, details: ["field": .string("run_date")])
            }
            if !started.run.isFinished { parts.executor.submit(started.run.id) }
            return try .json(RunWire(started.run, totals: nil), status: started.created ? .accepted : .ok)
        }
        runs.get { request, _ -> Response in
            let query = QueryFilter(request)
            let page = try await RunViews.list(after: try query.cursor(), limit: try query.limit(), on: parts.app.postgres)
            return try .json(ListPage("runs", items: page.rows.map { RunWire($0, totals: nil) }, nextCursor: page.nextCursor))
        }
        runs.get("/{id}") { _, context -> Response in
            let run = try await Self.run(context, parts: parts)
            return try .json(RunWire(run, totals: try await RunViews.totals(of: run.id, on: parts.app.postgres).map(TotalWire.init)))
        }
        runs.get("/{id}/report.csv") { _, context -> Response in
            let run = try await Self.run(context, parts: parts)
            let postgres = parts.app.postgres
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: RunReport.header))
                try await RunViews.lines(of: run.id, on: postgres) { lines in
                    try await writer.write(ByteBuffer(string: lines.map(RunReport.csv).joined()))
                }
                try await writer.finish(nil)
            }
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/csv; charset=utf-8",
                    .contentDisposition: "attachment; filename=\"payout-run-\(run.runDate).csv\"",
                ],
                body: body)
        }
    }

    // MARK: Edge helpers

    private static func hostID(_ request: Request, _ context: ServiceRequestContext) throws(APIError) -> HostID {
        guard let text = request.pathParameter("id", context: context), let id = try? HostID(parsing: text) else {
            throw APIError.notFound("no host with this id")
        }
        return id
    }

    private static func uuid(_ context: ServiceRequestContext, resource: String) throws(APIError) -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw APIError.notFound("no \(resource) with this id") }
        return id
    }

    private static func run(_ context: ServiceRequestContext, parts: PayoutParts) async throws -> PayoutRun {
        guard let run = try await RunViews.run(try uuid(context, resource: "payout run"), on: parts.app.postgres) else {
            throw APIError.notFound("no payout run with this id")
        }
        return run
    }

    private static func check(_ body: HostBody) throws(APIError) {
        let account = body.payoutAccount
        let suffix = account.dropFirst(5)
        guard account.hasPrefix("acct_"), (1...255).contains(suffix.count), suffix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw APIError.unprocessable(
                .validationFailed, "payout_account must be acct_ followed by 1 to 255 letters or digits",
                details: ["field": .string("payout_account")])
        }
        if let fee = body.feeBasisPoints, !(0...10_000).contains(fee) {
            throw APIError.unprocessable(.validationFailed, "fee_bps must be from 0 to 10000", details: ["field": .string("fee_bps")])
        }
    }
}

// MARK: Wire types

private struct HostBody: Decodable {
    let payoutAccount: String
    let feeBasisPoints: Int?

    enum CodingKeys: String, CodingKey {
        case payoutAccount = "payout_account"
        case feeBasisPoints = "fee_bps"
    }
}

private struct RunBody: Decodable {
    let runDate: String?

    enum CodingKeys: String, CodingKey {
        case runDate = "run_date"
    }
}

private struct HostWire: Encodable {
    let host: Host
    init(_ host: Host) { self.host = host }

    enum CodingKeys: String, CodingKey {
        case hostID = "host_id", payoutAccount = "payout_account", feeBasisPoints = "fee_bps", createdAt = "created_at", updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(host.hostID, forKey: .hostID)
        try container.encode(host.payoutAccount, forKey: .payoutAccount)
        try container.encode(host.feeBasisPoints, forKey: .feeBasisPoints)
        try container.encode(RFC3339.string(from: host.createdAt), forKey: .createdAt)
        try container.encode(RFC3339.string(from: host.updatedAt), forKey: .updatedAt)
    }
}

private struct BalancesWire: Encodable {
    let hostID: String
    let balances: [BalanceWire]

    enum CodingKeys: String, CodingKey {
        case hostID = "host_id", balances
    }
}

private struct BalanceWire: Encodable {
    let currency: String
    let payable: Int64
    let pending: Int64
    let held: Int64

    init(_ balance: Balance) {
        currency = balance.currency
        payable = balance.payable
        pending = balance.pending
        held = balance.held
    }
}

private struct PayoutWire: Encodable {
    let payout: PayoutView
    init(_ payout: PayoutView) { self.payout = payout }

    enum CodingKeys: String, CodingKey {
        case payoutID = "payout_id", runID = "run_id", hostID = "host_id", amount, currency, destination, status
        case providerRef = "provider_ref", error, createdAt = "created_at", paidAt = "paid_at", failedAt = "failed_at", items
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(payout.id.lowercasedString, forKey: .payoutID)
        try container.encode(payout.runID.lowercasedString, forKey: .runID)
        try container.encode(payout.hostID, forKey: .hostID)
        try container.encode(payout.amount, forKey: .amount)
        try container.encode(payout.currency, forKey: .currency)
        try container.encode(payout.destination, forKey: .destination)
        try container.encode(payout.status, forKey: .status)
        try container.encode(payout.providerRef, forKey: .providerRef)
        try container.encode(payout.error, forKey: .error)
        try container.encode(RFC3339.string(from: payout.createdAt), forKey: .createdAt)
        try container.encode(payout.paidAt.map { RFC3339.string(from: $0) }, forKey: .paidAt)
        try container.encode(payout.failedAt.map { RFC3339.string(from: $0) }, forKey: .failedAt)
        try container.encode(payout.items, forKey: .items)
    }
}

private struct TotalWire: Encodable {
    let total: RunTotal
    init(_ total: RunTotal) { self.total = total }

    enum CodingKeys: String, CodingKey {
        case currency, payouts, gross, fees, refunds, feeReversals = "fee_reversals", disputes, carriedIn = "carried_in", rounding, net
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(total.currency, forKey: .currency)
        try container.encode(total.payouts, forKey: .payouts)
        try container.encode(total.gross, forKey: .gross)
        try container.encode(total.fees, forKey: .fees)
        try container.encode(total.refunds, forKey: .refunds)
        try container.encode(total.feeReversals, forKey: .feeReversals)
        try container.encode(total.disputes, forKey: .disputes)
        try container.encode(total.carriedIn, forKey: .carriedIn)
        try container.encode(total.rounding, forKey: .rounding)
        try container.encode(total.net, forKey: .net)
    }
}

/// A run on the wire; `totals` and `reconciliation` only where one run is shown.
private struct RunWire: Encodable {
    let run: PayoutRun
    let totals: [TotalWire]?
    init(_ run: PayoutRun, totals: [TotalWire]?) {
        self.run = run
        self.totals = totals
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", runDate = "run_date", cutoff, settledBefore = "settled_before", status, phase, hosts, totals, reconciliation
        case createdAt = "created_at", startedAt = "started_at", completedAt = "completed_at"
    }

    private struct Reconciliation: Encodable {
        let ok: Bool?
        let mismatches: [Mismatch]
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(run.id.lowercasedString, forKey: .runID)
        try container.encode(run.runDate, forKey: .runDate)
        try container.encode(RFC3339.string(from: run.cutoff), forKey: .cutoff)
        try container.encode(RFC3339.string(from: run.settledBefore), forKey: .settledBefore)
        try container.encode(run.status.rawValue, forKey: .status)
        try container.encode(run.phase.rawValue, forKey: .phase)
        try container.encode(run.hostCount, forKey: .hosts)
        if let totals {
            try container.encode(totals, forKey: .totals)
            // Known once the run got past reconciliation: ok, or the mismatches that failed it.
            let known = run.phase == .publishing || run.phase == .done
            try container.encode(Reconciliation(ok: known ? run.mismatches.isEmpty : nil, mismatches: run.mismatches), forKey: .reconciliation)
        }
        try container.encode(RFC3339.string(from: run.createdAt), forKey: .createdAt)
        try container.encode(run.startedAt.map { RFC3339.string(from: $0) }, forKey: .startedAt)
        try container.encode(run.completedAt.map { RFC3339.string(from: $0) }, forKey: .completedAt)
    }
}
