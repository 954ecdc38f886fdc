import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Postgres
import ServiceKit
import ServiceLifecycle
import SharedModel
import TestSupport
import Testing

/// Builds the shared router of a service with a few probe routes, against the test servers.
func makeTestApplication(
    databaseURL: String? = nil,
    redisURL: String? = nil,
    bodyLimit: Int = 4096,
    settings extraSettings: [String: String] = [:],
    extraChecks: [DependencyCheck] = [],
    redisRequired: Bool = true
) throws -> (ServiceApplication, Router<ServiceRequestContext>) {
    PlatformMetrics.bootstrap()
    let environment: [String: String] = [
        "DATABASE_URL": try databaseURL ?? TestEnvironment.databaseURL(),
        "REDIS_URL": try redisURL ?? TestEnvironment.redisURL(),
        "ADMIN_TOKEN": "admin-secret",
        "API_KEYS": "key-one,key-two",
        "MAX_BODY_BYTES": String(bodyLimit),
        "DATABASE_CONNECT_TIMEOUT": "2s",
        "REDIS_POOL_WAIT": "1s",
    ].merging(extraSettings) { _, extra in extra }
    let settings = try ServiceSettings(
        serviceName: "router-test",
        defaultPort: 0,
        requiresAPIKeys: true,
        reader: ConfigurationReader(environment: environment)
    )
    let app = ServiceApplication(settings: settings, logger: TestEnvironment.logger)
    let router = app.makeRouter(extraChecks: extraChecks, redisRequired: redisRequired)
    struct Echo: Codable { var name: String; var count: Int }
    router.post("/echo") { request, context -> Response in
        let echo = try await request.decode(as: Echo.self, context: context)
        return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "\(echo.name):\(echo.count)")))
    }
    // What collecting a chunked body past the limit throws (there is no Content-Length to refuse early).
    router.post("/collect-too-much") { _, _ -> Response in
        throw NIOTooManyBytesError(maxBytes: 4096)
    }
    router.get("/boom") { _, _ -> Response in
        struct Secret: Error { let password = "hunter2" }
        throw Secret()
    }
    router.get("/database-down") { _, _ -> Response in
        throw PostgresError(code: .connectionFailed, message: "could not connect to server")
    }
    router.group("/public").add(middleware: app.clientAuthentication).get("/whoami") { _, context -> String in
        // A client is named by its key's digest (never the key), the operator by "admin".
        context.principal?.id ?? "nobody"
    }
    router.group("/admin").add(middleware: app.adminAuthentication).get("/ping") { _, _ -> String in "pong" }
    return (app, router)
}

/// Decodes the JSON error body of a response (nil when it is not one).
func errorBody(_ response: TestResponse) -> ErrorBody? {
    try? JSONDecoder.platform.decode(ErrorBody.self, from: Data(buffer: response.body))
}

@Suite("Service router: health, errors, limits, authentication")
struct ServiceRouterTests {
    @Test("/healthz is 200; /readyz is 200 when Postgres and Redis answer")
    func healthAndReadiness() async throws {
        let (app, router) = try makeTestApplication()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains(#""postgres":"up""#))
                #expect(body.contains(#""redis":"up""#))
            }
        }
    }

    @Test("/readyz is 503 naming Redis when Redis does not answer")
    func readinessNamesTheDependencyThatIsDown() async throws {
        let (app, router) = try makeTestApplication(redisURL: "redis://127.0.0.1:1")
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = errorBody(response)
                #expect(body?.error.code == .dependencyUnavailable)
                #expect(body?.error.message.contains("redis") == true)
                #expect(body?.error.message.contains("postgres") == false)
                #expect(body?.error.details?["redis"] == .string("down"))
                #expect(body?.error.details?["postgres"] == .string("up"))
            }
        }
    }

    @Test(
        "once graceful shutdown begins, /readyz is 503 shutting_down without a check while every route is still served, for SHUTDOWN_DRAIN_DELAY"
    )
    func shutdownDrain() async throws {
        let (app, router) = try makeTestApplication(settings: ["SHUTDOWN_DRAIN_DELAY": "1s"])
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        #expect(app.drain.delay == .seconds(1))
        let group = ServiceGroup(configuration: .init(services: [app.drain], logger: TestEnvironment.logger))
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
            let drained = Task { try await group.run() }
            let shutdownBegan = ContinuousClock.now
            await group.triggerGracefulShutdown()
            while !app.drain.isDraining && ContinuousClock.now - shutdownBegan < .seconds(5) {
                try await Task.sleep(for: .milliseconds(10))
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(errorBody(response)?.error.code == .shuttingDown)
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/public/whoami", method: .get, headers: [.authorization: "Bearer key-one"]) { response in
                #expect(response.status == .ok)
            }
            try await drained.value
            // The drain returns (and lets the application stop) only after its delay.
            let drainTook = ContinuousClock.now - shutdownBegan
            #expect(drainTook >= .milliseconds(900), "drained for \(drainTook)")
            #expect(drainTook < .seconds(10), "drained for \(drainTook)")
        }
    }

    @Test("a service whose routes need only Postgres stays ready without Redis: /readyz 200 with redis down; Postgres down is still 503")
    func readinessWithoutRedis() async throws {
        let (app, router) = try makeTestApplication(redisURL: "redis://127.0.0.1:1", redisRequired: false)
        let (downApp, downRouter) = try makeTestApplication(
            databaseURL: "postgres://nobody@127.0.0.1:1/none", redisURL: "redis://127.0.0.1:1", redisRequired: false)
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
                await downApp.postgres.shutdown(); await downApp.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains(#""status":"ready""#))
                #expect(body.contains(#""redis":"down""#))
                #expect(body.contains(#""postgres":"up""#))
            }
        }
        try await Application(router: downRouter).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = errorBody(response)
                #expect(body?.error.message.contains("postgres") == true)
                #expect(body?.error.message.contains("redis") == false)
                #expect(body?.error.details?["redis"] == .string("down"))
            }
        }
    }

    @Test("errors use the JSON body with the right status; unknown errors are not leaked")
    func errorBodies() async throws {
        let (app, router) = try makeTestApplication()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: "{not json")) { response in
                #expect(response.status == .badRequest)
                #expect(errorBody(response)?.error.code == .badRequest)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: #"{"name": 5, "count": "x"}"#)) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: #"{"name": "a", "count": 2}"#)) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "a:2")
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(errorBody(response)?.error.code == .notFound)
            }
            try await client.execute(uri: "/boom", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(errorBody(response)?.error.code == .internalError)
                #expect(!String(buffer: response.body).contains("hunter2"))
            }
            try await client.execute(uri: "/database-down", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(errorBody(response)?.error.code == .dependencyUnavailable)
            }
        }
    }

    @Test("bodies over the limit get 413 with the JSON body")
    func bodyLimit() async throws {
        let (app, router) = try makeTestApplication(bodyLimit: 4096)
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        let large = #"{"name": ""# + String(repeating: "x", count: 5000) + #"", "count": 1}"#
        try await Application(router: router).test(.router) { client in
            try await client.execute(
                uri: "/echo", method: .post, headers: [.contentLength: String(large.utf8.count)], body: ByteBuffer(string: large)
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(errorBody(response)?.error.code == .payloadTooLarge)
            }
        }
        // A chunked body (no Content-Length) over the limit fails while a handler collects it: 413 too.
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/collect-too-much", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .contentTooLarge)
                #expect(errorBody(response)?.error.code == .payloadTooLarge)
            }
        }
        // Without a Content-Length (streamed), the limit applies while collecting the body.
        try await Application(router: router).test(.live) { client in
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: large)) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
    }

    @Test("credentials: none or unknown 401, client key on an admin route 403, admin everywhere")
    func authentication() async throws {
        let (app, router) = try makeTestApplication()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            let cases: [(String, String?, HTTPResponse.Status, String?)] = [
                ("/public/whoami", nil, .unauthorized, nil),
                ("/public/whoami", "Bearer wrong", .unauthorized, nil),
                ("/public/whoami", "Basic key-one", .unauthorized, nil),
                ("/public/whoami", "Bearer key-one", .ok, "key_9b346041bc9a49574eb2665b2ad2a0a3"),
                ("/public/whoami", "Bearer key-two", .ok, "key_c8df51469c308a59bfbd48a3e0bdd228"),
                ("/public/whoami", "Bearer admin-secret", .ok, "admin"),
                // The scheme in any case (RFC 9110 11.1), then exactly one space and the token.
                ("/public/whoami", "bearer key-one", .ok, "key_9b346041bc9a49574eb2665b2ad2a0a3"),
                ("/public/whoami", "BEARER key-two", .ok, "key_c8df51469c308a59bfbd48a3e0bdd228"),
                ("/public/whoami", "Bearer", .unauthorized, nil),
                ("/public/whoami", "Bearerkey-one", .unauthorized, nil),
                ("/public/whoami", "Bearer  key-one", .unauthorized, nil),
                ("/public/whoami", "Bearer\tkey-one", .unauthorized, nil),
                ("/public/whoami", "Bearer key-one\u{E9}", .unauthorized, nil),
                ("/public/whoami", "B\u{E9}arer key-one", .unauthorized, nil),
                ("/admin/ping", nil, .unauthorized, nil),
                ("/admin/ping", "Bearer key-one", .forbidden, nil),
                ("/admin/ping", "Bearer admin-secret", .ok, "pong"),
            ]
            for (uri, authorization, status, body) in cases {
                var headers = HTTPFields()
                if let authorization { headers[.authorization] = authorization }
                try await client.execute(uri: uri, method: .get, headers: headers) { response in
                    #expect(response.status == status, "\(uri) with \(authorization ?? "no credentials")")
                    if let body { #expect(String(buffer: response.body) == body) }
                    if status == .unauthorized { #expect(errorBody(response)?.error.code == .unauthorized) }
                    if status == .forbidden { #expect(errorBody(response)?.error.code == .forbidden) }
                }
            }
        }
    }

    @Test("two Authorization fields are one joined credential, which matches no key: 401")
    func repeatedAuthorization() async throws {
        let (app, router) = try makeTestApplication()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            for pair in [["Bearer key-one", "Bearer key-one"], ["Bearer key-one", "Bearer wrong"], ["Bearer wrong", "Bearer admin-secret"]] {
                var headers = HTTPFields()
                for value in pair { headers.append(HTTPField(name: .authorization, value: value)) }
                try await client.execute(uri: "/public/whoami", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized, "\(pair)")
                }
            }
        }
    }

    @Test("HTTPFields.value(of:) gives what the subscript gives: nil, the one value, several joined with \", \"")
    func fieldValue() {
        var fields: HTTPFields = [.contentType: "application/json", .contentLength: "12"]
        #expect(fields.value(of: .contentLength) == "12")
        #expect(fields.value(of: .authorization) == nil)
        fields.append(HTTPField(name: .accept, value: "text/plain"))
        fields.append(HTTPField(name: .accept, value: "application/json"))
        fields.append(HTTPField(name: .accept, value: ""))
        for name in [HTTPField.Name.contentType, .contentLength, .authorization, .accept, .requestID] {
            #expect(fields.value(of: name) == fields[name], "\(name)")
        }
        #expect(fields.value(of: .accept) == "text/plain, application/json, ")
        // Names compare without regard to case.
        #expect(fields.value(of: HTTPField.Name("CONTENT-length")!) == "12")
        // set(_:to:) is the subscript's setter: several fields become one, a new name is appended.
        var expected = fields
        expected[.accept] = "*/*"
        expected[.requestID] = "r-1"
        fields.set(.accept, to: "*/*")
        fields.set(.requestID, to: "r-1")
        #expect(fields == expected)
        #expect(Array(fields.map(\.name)) == [.contentType, .contentLength, .accept, .requestID])
    }

    @Test("ADMIN_TOKEN_PREVIOUS: during a rotation the old and the new admin token both work, on admin and client routes; without it only the new")
    func adminTokenRotation() async throws {
        let (rotating, rotatingRouter) = try makeTestApplication(settings: ["ADMIN_TOKEN": "admin-new", "ADMIN_TOKEN_PREVIOUS": "admin-old"])
        let (rotated, rotatedRouter) = try makeTestApplication(settings: ["ADMIN_TOKEN": "admin-new"])
        defer {
            Task {
                await rotating.postgres.shutdown(); await rotating.redis.shutdown()
                await rotated.postgres.shutdown(); await rotated.redis.shutdown()
            }
        }
        for (router, accepted) in [(rotatingRouter, ["admin-new", "admin-old"]), (rotatedRouter, ["admin-new"])] {
            try await Application(router: router).test(.router) { client in
                for token in ["admin-new", "admin-old", "admin-secret", "key-one"] {
                    try await client.execute(uri: "/admin/ping", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                        let expected: HTTPResponse.Status = accepted.contains(token) ? .ok : token == "key-one" ? .forbidden : .unauthorized
                        #expect(response.status == expected, "\(token) on /admin/ping, accepted \(accepted)")
                    }
                    try await client.execute(uri: "/public/whoami", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                        if accepted.contains(token) { #expect(String(buffer: response.body) == "admin", "\(token) on /public/whoami") }
                    }
                }
            }
        }
        #expect(throws: ConfigurationError.self) { try makeTestApplication(settings: ["ADMIN_TOKEN_PREVIOUS": "  "]) }
    }

    @Test("X-Request-Id is echoed, or created when missing or unusable")
    func correlationID() async throws {
        let (app, router) = try makeTestApplication()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get, headers: [.requestID: "req-123"]) { response in
                #expect(response.headers[.requestID] == "req-123")
            }
            try await client.execute(uri: "/nowhere", method: .get, headers: [.requestID: "req-404"]) { response in
                #expect(response.headers[.requestID] == "req-404")
            }
            try await client.execute(uri: "/healthz", method: .get, headers: [.requestID: "bad id with spaces"]) { response in
                #expect(response.headers[.requestID].flatMap(UUID.init(uuidString:)) != nil)
            }
        }
    }

    @Test("/metrics exposes per-route request counts and latency histograms")
    func metrics() async throws {
        let (app, router) = try makeTestApplication()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        try await Application(router: router).test(.router) { client in
            for _ in 0..<3 {
                try await client.execute(uri: "/healthz", method: .get) { _ in }
            }
            try await client.execute(uri: "/database-down", method: .get) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(text.contains(#"hb_requests{http_route="/healthz",http_request_method="GET",http_response_status_code="200"}"#))
                #expect(text.contains(#"http_response_status_code="503""#))
                #expect(text.contains("http_server_request_duration_bucket"))
            }
        }
    }
}
