import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Messaging
import Migrations
import Postgres
import ServiceKit
import SharedModel
import TestSupport
import Testing

@Suite("Dead-letter admin routes")
struct DeadLetterRoutesTests {
    /// A migrated database with one failure and one review entry.
    func seeded() async throws -> (ServiceApplication, Router<ServiceRequestContext>, failure: UUID, review: UUID, booking: String) {
        let url = try await TestDatabase.create(prefix: "dlq")
        let (app, router) = try makeTestApplication(databaseURL: url)
        try await Migrator(client: app.postgres, logger: TestEnvironment.logger).migrate()
        let booking = BookingID()
        let envelope = try EventEnvelope(
            event: BookingExpired(bookingID: booking), occurredAt: Date(), sequence: 1, correlationID: "c", causationID: nil, producer: .booking
        )
        let ids = try await app.postgres.withTransaction { transaction in
            [
                try DeadLetterStore.record(
                    kind: .failure, stream: "stream:booking", consumer: "notification", envelope: envelope, error: "smtp down", attempts: 8,
                    firstFailedAt: Date(), in: transaction),
                try DeadLetterStore.record(
                    kind: .review, stream: "stream:payments", consumer: "booking-saga", envelope: envelope, error: "late payment",
                    attempts: 1, firstFailedAt: Date(), in: transaction),
            ]
        }
        return (app, router, ids[0], ids[1], booking.description)
    }

    let admin: HTTPFields = [.authorization: "Bearer admin-secret", .operatorName: "ops@example.com"]

    @Test("listing needs the admin token, filters by booking id and kind, pages with a cursor")
    func listing() async throws {
        let (app, router, failure, review, booking) = try await seeded()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/v1/admin/dead-letters", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/admin/dead-letters", method: .get, headers: [.authorization: "Bearer key-one"]) {
                #expect($0.status == .forbidden)
            }
            try await client.execute(uri: "/v1/admin/dead-letters?aggregate_id=\(booking)", method: .get, headers: admin) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains(failure.uuidString.lowercased()) && body.contains(review.uuidString.lowercased()))
                #expect(body.contains(booking))
            }
            try await client.execute(uri: "/v1/admin/dead-letters?kind=review", method: .get, headers: admin) { response in
                let body = String(buffer: response.body)
                #expect(body.contains(review.uuidString.lowercased()) && !body.contains(failure.uuidString.lowercased()))
            }
            let firstPage = try await client.execute(uri: "/v1/admin/dead-letters?limit=1", method: .get, headers: admin) { response in
                try JSONDecoder().decode(PageProbe.self, from: Data(buffer: response.body))
            }
            #expect(firstPage.deadLetters.count == 1)
            let cursor = try #require(firstPage.nextCursor)
            try await client.execute(uri: "/v1/admin/dead-letters?limit=1&cursor=\(cursor)", method: .get, headers: admin) { response in
                let page = try JSONDecoder().decode(PageProbe.self, from: Data(buffer: response.body))
                #expect(page.deadLetters.count == 1)
                #expect(page.deadLetters[0].id != firstPage.deadLetters[0].id)
                #expect(page.nextCursor == nil)
            }
            for bad in [
                "kind=poison", "status=gone", "limit=0", "limit=x", "cursor=nonsense", "from=2026-01-01T00:00:00", "event_type=a%00b", "stream=%00",
            ] {
                try await client.execute(uri: "/v1/admin/dead-letters?\(bad)", method: .get, headers: admin) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                }
            }
            // Cursors the API never issued, crafted to overflow a time conversion: 400 invalid_cursor, and the
            // service keeps serving.
            for crafted in CraftedCursors.all {
                let escaped = crafted.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? crafted
                try await client.execute(uri: "/v1/admin/dead-letters?cursor=\(escaped)", method: .get, headers: admin) { response in
                    #expect(response.status == .badRequest, "\(crafted)")
                    #expect(String(buffer: response.body).contains(#""code":"invalid_cursor""#), "\(crafted)")
                }
            }
            try await client.execute(uri: "/v1/admin/dead-letters?limit=1", method: .get, headers: admin) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("show, replay, resolve and discard with their statuses")
    func actions() async throws {
        let (app, router, failure, review, _) = try await seeded()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            let base = "/v1/admin/dead-letters"
            try await client.execute(uri: "\(base)/\(failure)", method: .get, headers: admin) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("booking.expired"))
            }
            try await client.execute(uri: "\(base)/not-a-uuid", method: .get, headers: admin) { #expect($0.status == .notFound) }
            try await client.execute(uri: "\(base)/\(UUID())", method: .get, headers: admin) { #expect($0.status == .notFound) }
            // Operator actions need X-Operator.
            try await client.execute(uri: "\(base)/\(failure)/replay", method: .post, headers: [.authorization: "Bearer admin-secret"]) {
                #expect($0.status == .badRequest)
            }
            // Bulk replay by filter: the other consumer's failure matches nothing.
            try await client.execute(uri: "\(base)/replay", method: .post, headers: admin, body: ByteBuffer(string: #"{"consumer": "nobody"}"#)) {
                response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"replayed":0}"#)
            }
            try await client.execute(uri: "\(base)/replay", method: .post, headers: admin, body: ByteBuffer(string: #"{"consumer": "notification"}"#))
            {
                response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"replayed":1}"#)
            }
            try await client.execute(uri: "\(base)/\(failure)/replay", method: .post, headers: admin) { #expect($0.status == .conflict) }
            try await client.execute(uri: "\(base)/\(review)/replay", method: .post, headers: admin) { #expect($0.status == .unprocessableContent) }
            try await client.execute(uri: "\(base)/\(review)/resolve", method: .post, headers: admin, body: ByteBuffer(string: "{")) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "\(base)/\(review)/resolve", method: .post, headers: admin, body: ByteBuffer(string: #"{"note": " "}"#)) {
                #expect($0.status == .unprocessableContent)
            }
            // Postgres text cannot hold NUL: refused at the edge, never a 500.
            try await client.execute(
                uri: "\(base)/\(review)/resolve", method: .post, headers: admin, body: ByteBuffer(string: #"{"note": "a\u0000b"}"#)
            ) {
                #expect($0.status == .unprocessableContent)
            }
            try await client.execute(uri: "\(base)/replay", method: .post, headers: admin, body: ByteBuffer(string: #"{"stream": "\u0000"}"#)) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(
                uri: "\(base)/\(review)/resolve", method: .post, headers: admin, body: ByteBuffer(string: #"{"note": "refunded by hand"}"#)
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "\(base)/\(review)/discard", method: .post, headers: admin, body: ByteBuffer(string: #"{"reason": "x"}"#)) {
                #expect($0.status == .conflict)
            }
            try await client.execute(uri: "\(base)/\(review)", method: .get, headers: admin) { response in
                let body = String(buffer: response.body)
                #expect(body.contains("resolved") && body.contains("refunded by hand") && body.contains("ops@example.com"))
            }
        }
        #expect(
            try await app.postgres.query(
                "SELECT count(*) FROM messaging.outbox WHERE event_id = (SELECT event_id FROM messaging.dead_letters WHERE id = \(failure)) AND published_at IS NULL"
            )[0].decode(Int.self, at: 0) == 1)
    }
}

struct PageProbe: Decodable {
    struct Entry: Decodable { let id: UUID }
    let deadLetters: [Entry]
    let nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case deadLetters = "dead_letters"
        case nextCursor = "next_cursor"
    }
}
