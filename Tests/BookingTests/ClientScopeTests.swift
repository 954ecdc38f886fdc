import Foundation
import HTTPTypes
import HummingbirdTesting
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking
@testable import ServiceKit

@Suite("Bookings are scoped to the client application that created them")
struct ClientScopeTests {
    @Test("another client's booking, saga, list and cancel answer as if it did not exist; a wrong customer_id is 404; the admin sees all")
    func scopedReads() async throws {
        let harness = try await BookingHarness.make()
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 3)
            let booked = try await client.holdAndBook(event, ["S1"], customer: "alice")
            let id = try #require(booked["booking_id"]?.stringValue)
            _ = try await postgres.query(
                "UPDATE booking.bookings SET payment_provider_ref = 'pi_scope', payment_client_secret = 'pi_scope_secret_x' WHERE booking_id = \(UUID(uuidString: id))"
            )

            // The creating client sees it, with the client secret; with its own customer_id too.
            let own = try await client.call(.get, "/v1/bookings/\(id)")
            #expect(own.status == .ok && own["payment"]?["client_secret"] == "pi_scope_secret_x")
            #expect(try await client.call(.get, "/v1/bookings/\(id)?customer_id=alice").status == .ok)
            #expect(try await client.call(.get, "/v1/bookings/\(id)/saga?customer_id=alice").status == .ok)
            // A customer_id that is not the booking's: 404, not 403.
            #expect(try await client.call(.get, "/v1/bookings/\(id)?customer_id=mallory").status == .notFound)
            #expect(try await client.call(.get, "/v1/bookings/\(id)/saga?customer_id=mallory").status == .notFound)

            // Another client application, with either of its keys: nothing to see, nothing to cancel.
            for caller in [Caller.partner, .partnerRotated] {
                let foreign = try await client.call(.get, "/v1/bookings/\(id)", as: caller)
                #expect(foreign.status == .notFound && foreign["error"]?["code"] == "not_found", "\(caller)")
                #expect(try await client.call(.get, "/v1/bookings/\(id)/saga", as: caller).status == .notFound)
                let list = try await client.call(.get, "/v1/customers/alice/bookings", as: caller)
                #expect(list.status == .ok && list["bookings"]?.arrayValue?.isEmpty == true)
                let cancel = try await client.call(.post, "/v1/bookings/\(id)/cancel", as: caller, json: ["customer_id": "alice"])
                #expect(cancel.status == .notFound)
            }
            #expect(try await client.call(.get, "/v1/bookings/\(UUID())").status == .notFound, "the same answer as an unknown id")

            // The partner's own booking of the same customer id is its own, under either key.
            let hold = try await client.call(
                .post, "/v1/holds", as: .partner, json: ["event_id": .string(event), "seat_ids": ["S2"], "customer_id": "alice"])
            let holdID = try #require(hold["hold_id"]?.stringValue)
            let partnerBooking = try await client.call(
                .post, "/v1/bookings", as: .partner, json: ["hold_id": .string(holdID), "customer_id": "alice"],
                headers: [.idempotencyKey: UUID().uuidString])
            let partnerID = try #require(partnerBooking["booking_id"]?.stringValue)
            #expect(try await client.call(.get, "/v1/bookings/\(partnerID)", as: .partnerRotated).status == .ok)
            #expect(try await client.call(.get, "/v1/bookings/\(partnerID)").status == .notFound)
            let partnerList = try await client.call(.get, "/v1/customers/alice/bookings", as: .partnerRotated)
            #expect(partnerList["bookings"]?.arrayValue?.compactMap { $0["booking_id"]?.stringValue } == [partnerID])
            let ownList = try await client.call(.get, "/v1/customers/alice/bookings")
            #expect(ownList["bookings"]?.arrayValue?.compactMap { $0["booking_id"]?.stringValue } == [id])

            // The admin sees both, without the client secret, and may cancel any.
            let asAdmin = try await client.call(.get, "/v1/bookings/\(id)", as: .admin)
            #expect(asAdmin.status == .ok && asAdmin["payment"]?["provider_ref"] == "pi_scope" && asAdmin["payment"]?["client_secret"] == .null)
            let adminList = try await client.call(.get, "/v1/customers/alice/bookings", as: .admin)
            #expect(adminList["bookings"]?.arrayValue?.count == 2)
            #expect(try await client.call(.get, "/v1/bookings/\(partnerID)/saga", as: .admin).status == .ok)
            #expect(try await client.call(.post, "/v1/bookings/\(partnerID)/cancel", as: .admin, json: [:]).status == .ok)
        }
        let clients = try await harness.postgres.query("SELECT DISTINCT client_id FROM booking.bookings ORDER BY client_id")
        let names = try clients.map { try $0.decode(String.self, at: 0) }
        #expect(names.count == 2 && names.contains("partner") && names.allSatisfy { !$0.contains("key-") }, "\(names): no key is stored")
    }

    @Test("API_KEYS: `name:key` names a client (several keys may share it), a bare key is a client of its own named by its digest")
    func keyParsing() {
        let middleware = AuthenticationMiddleware(
            required: .client, adminTokens: ["admin"], apiKeys: ["shop:k1", "shop:k2", "bare-key", "not a name:k3", "x:"])
        #expect(middleware.principal(for: "Bearer k1") == .client(id: "shop"))
        #expect(middleware.principal(for: "Bearer k2") == .client(id: "shop"))
        guard case .client(let bare) = middleware.principal(for: "Bearer bare-key") else {
            Issue.record("the bare key is not a client")
            return
        }
        #expect(bare.hasPrefix("key_") && bare.count == 36 && !bare.contains("bare"))
        // An entry whose part before ':' is not a name is a bare key as a whole.
        #expect(middleware.principal(for: "Bearer not a name:k3") != nil)
        #expect(middleware.principal(for: "Bearer k3") == nil)
        #expect(middleware.principal(for: "Bearer x:") != nil)
        #expect(middleware.principal(for: "Bearer admin") == .admin)
        #expect(middleware.principal(for: "Bearer nope") == nil)
        #expect(middleware.principal(for: nil) == nil)
    }

    @Test(
        "a bare key rotates: `key_<first 32 hex digits of its SHA-256>:NEWKEY` is the same client, beside the bare key and after it is removed"
    )
    func bareKeyRotation() {
        let before = AuthenticationMiddleware(required: .client, adminTokens: ["admin"], apiKeys: ["key-one"])
        // `printf %s key-one | sha256sum | cut -c1-32`, as docs/operations.md has the operator compute it.
        let name = "key_9b346041bc9a49574eb2665b2ad2a0a3"
        #expect(before.principal(for: "Bearer key-one") == .client(id: name))
        let during = AuthenticationMiddleware(required: .client, adminTokens: ["admin"], apiKeys: ["\(name):key-new", "key-one"])
        #expect(during.principal(for: "Bearer key-one") == .client(id: name))
        #expect(during.principal(for: "Bearer key-new") == .client(id: name))
        let after = AuthenticationMiddleware(required: .client, adminTokens: ["admin"], apiKeys: ["\(name):key-new"])
        #expect(after.principal(for: "Bearer key-new") == .client(id: name))
        #expect(after.principal(for: "Bearer key-one") == nil)
    }
}
