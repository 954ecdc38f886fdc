import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import NIOCore
import Redis
import SharedModel
import TestSupport
import Testing

/// The metric names the alert rules and the Grafana dashboard query, against what the four running
/// services expose: a rule or panel on a misspelt or vanished metric would never fire or show anything.
@Suite("Metric names: every name in deploy/prometheus/rules and deploy/grafana is exposed by a running service")
struct MetricNamesTests {
    /// The repository's root, from this file's place in it (Tests/EndToEndTests/).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Series Prometheus makes itself for every target rather than scraping them.
    static let prometheusSeries: Set<String> = ["up"]

    @Test("the rules and dashboards name only metrics the four services expose (or recording rules)")
    func everyReferencedNameIsExposed() async throws {
        let references = try Self.referencedNames()
        let distinct = Set(references.flatMap { $0.names })
        #expect(distinct.count > 15, "only \(distinct.count) names found: \(distinct.sorted())")
        for file in references {
            #expect(!file.names.isEmpty, "no metric name found in \(file.path)")
        }
        let recorded = try Self.recordingRuleNames()
        #expect(!recorded.isEmpty, "no recording rule found")

        let exposition = try await DisruptableServers.withExclusiveAccess { servers in
            try await Self.scrapeRunningServices(servers)
        }
        var unknown: [String] = []
        for file in references {
            for name in file.names.sorted()
            where !recorded.contains(name) && !Self.prometheusSeries.contains(name) && !exposition.isExposed(name) {
                unknown.append("\(name) (\(file.path))")
            }
        }
        #expect(unknown.isEmpty, "names no running service exposes:\n\(unknown.joined(separator: "\n"))")
    }

    // MARK: What the rules and dashboards name

    struct FileReferences {
        let path: String
        let names: Set<String>
    }

    /// Every metric name in the expressions of `deploy/prometheus/rules/*.yml` and the panel queries of
    /// `deploy/grafana/*.json`, per file.
    static func referencedNames() throws -> [FileReferences] {
        var found: [FileReferences] = []
        let rules = try files(in: "deploy/prometheus/rules", extension: "yml")
        #expect(!rules.isEmpty, "no rule files in deploy/prometheus/rules")
        for path in rules {
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
            let names = RuleFileReader.values(of: "expr", in: text).reduce(into: Set<String>()) { $0.formUnion(PromQLNames.metricNames(in: $1)) }
            found.append(FileReferences(path: path, names: names))
        }
        let dashboards = try files(in: "deploy/grafana", extension: "json")
        #expect(!dashboards.isEmpty, "no dashboards in deploy/grafana")
        for path in dashboards {
            let data = try Data(contentsOf: repositoryRoot.appendingPathComponent(path))
            let queries = DashboardReader.queries(in: try JSONSerialization.jsonObject(with: data))
            found.append(FileReferences(path: path, names: queries.reduce(into: Set<String>()) { $0.formUnion(PromQLNames.metricNames(in: $1)) }))
        }
        return found
    }

    /// The names the recording rules define.
    static func recordingRuleNames() throws -> Set<String> {
        var names = Set<String>()
        for path in try files(in: "deploy/prometheus/rules", extension: "yml") {
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
            names.formUnion(RuleFileReader.values(of: "record", in: text).map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return names
    }

    static func files(in directory: String, extension fileExtension: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent(directory).path)
            .filter { $0.hasSuffix(".\(fileExtension)") }.sorted().map { "\(directory)/\($0)" }
    }

    // MARK: What the services expose

    /// Starts the four services on a fresh database, sends each a few requests (found, not found,
    /// unauthorized, authorized), gives notification an endpoint with a pending delivery (its
    /// per-endpoint gauges exist only then), and reads every `/metrics`.
    static func scrapeRunningServices(_ servers: DisruptableServers) async throws -> Exposition {
        let url = try await TestDatabase.create(prefix: "e2e_metrics", on: servers.databaseURL)
        let migrate = try ServiceProcess.start("booking", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        #expect(await migrate.child.termination(within: .seconds(30)) == .exited(0), "\(migrate.output)")
        var running: [ServiceProcess] = []
        defer { for service in running { Task { await service.child.kill() } } }
        for service in services {
            let port = try freePort()
            var environment = service.environment.merging([
                "DATABASE_URL": url, "REDIS_URL": servers.redisURL, "PORT": String(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning",
            ]) { _, new in new }
            if service.name == "notification" { environment["NOTIFICATION_ALLOW_PRIVATE_NETWORKS"] = "true" }
            running.append(try ServiceProcess.start(service.name, environment: environment, port: port))
        }
        for service in running {
            #expect(await waitFor("/readyz", port: service.port, status: 200)?.status == 200, "\(service.name): \(service.output)")
        }
        if let notification = running.first(where: { $0.name == "notification" }) {
            try await givePendingDelivery(notification, redisURL: servers.redisURL)
        }
        var exposition = Exposition()
        for service in running {
            let client = TestClient(host: "127.0.0.1", port: service.port, configuration: .init(timeout: .seconds(10)))
            client.connect()
            #expect(try await client.get("/healthz").status == .ok)
            #expect(try await client.get("/no-such-route").status == .notFound)
            #expect(try await client.get("/v1/admin/dead-letters").status == .unauthorized)
            #expect(try await client.get("/v1/admin/dead-letters", headers: [.authorization: "Bearer admin"]).status == .ok)
            if service.name == "payments-webhook" {
                let refused = try await client.post(
                    "/v1/webhooks/stripe", headers: [HTTPField.Name("Stripe-Signature")!: "t=1,v1=00"], body: ByteBuffer(string: "{}"))
                #expect(refused.status == .badRequest)
            }
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
            exposition.add(metrics.body.map { String(buffer: $0) } ?? "")
            try? await client.shutdown()
        }
        for service in running { await service.child.kill() }
        running = []
        return exposition
    }

    /// An endpoint that refuses connections and a `dead_letter.recorded` it subscribes to: its delivery
    /// stays pending (retried later). Waits for the gauges' refresh (every 15 s) to report it.
    static func givePendingDelivery(_ notification: ServiceProcess, redisURL: String) async throws {
        let client = TestClient(host: "127.0.0.1", port: notification.port, configuration: .init(timeout: .seconds(10)))
        client.connect()
        defer { Task { try? await client.shutdown() } }
        let created = try await client.post(
            "/v1/endpoints", headers: [.authorization: "Bearer admin", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"url": "http://127.0.0.1:9/hook", "event_types": ["dead_letter.recorded"]}"#))
        #expect(created.status == .created, "\(created.body.map { String(buffer: $0) } ?? "")")
        try await Task.sleep(for: .milliseconds(50))
        let recorded = DeadLetterRecorded(
            deadLetterID: UUID(), kind: "failure", stream: Streams.booking, consumer: "metric-names", eventID: UUID(), eventType: "booking.confirmed",
            eventAggregateID: UUID().uuidString.lowercased(), error: "a test's dead letter")
        let envelope = try EventEnvelope(
            event: recorded, occurredAt: Date(), sequence: 1, correlationID: "metric-names", causationID: nil, producer: .booking)
        let redis = try RedisClient.forTests(url: redisURL, connections: 1)
        _ = try await redis.xadd(Streams.deadLetters, fields: [(Streams.envelopeField, Array(try envelope.jsonData()))])
        await redis.shutdown()
        let reported = try await eventually(timeout: .seconds(25), every: .milliseconds(500)) {
            guard let metrics = await get("/metrics", port: notification.port) else { return false }
            return metrics.body.contains("notification_oldest_pending_seconds{")
        }
        #expect(reported, "notification never reported its pending delivery: \(notification.output)")
    }
}

/// The metric families of one or more `/metrics` expositions.
struct Exposition {
    /// Family name -> type, from the `# TYPE` lines.
    private(set) var families: [String: String] = [:]

    mutating func add(_ text: String) {
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            guard parts.count >= 4 else { continue }
            families[String(parts[2])] = String(parts[3])
        }
    }

    /// Whether a series of this name is exposed: a counter's, gauge's or untyped family's own name, or
    /// a histogram's `_bucket`, `_sum` and `_count` (a summary's own name, `_sum` and `_count`).
    func isExposed(_ name: String) -> Bool {
        if let type = families[name] { return type != "histogram" }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let family = String(name.dropLast(suffix.count))
            switch families[family] {
            case "histogram": return true
            case "summary": return suffix != "_bucket"
            default: continue
            }
        }
        return false
    }
}

/// The values of one key in a Prometheus rule file, enough YAML for rule files: `key: value` (plain
/// or quoted, continued on more indented lines) and block scalars (`key: |`, `key: >-`).
enum RuleFileReader {
    static func values(of key: String, in text: String) -> [String] {
        let lines = text.components(separatedBy: "\n")
        var values: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            index += 1
            guard let (column, rest) = keyValue(key, in: line) else { continue }
            var parts: [String] = []
            let first = rest.trimmingCharacters(in: .whitespaces)
            if !first.isEmpty && !first.hasPrefix("|") && !first.hasPrefix(">") { parts.append(unquote(first)) }
            while index < lines.count {
                let next = lines[index]
                let indentation = next.prefix { $0 == " " }.count
                let content = next.trimmingCharacters(in: .whitespaces)
                guard content.isEmpty || indentation > column else { break }
                if !content.isEmpty && !content.hasPrefix("#") { parts.append(content) }
                index += 1
            }
            values.append(parts.joined(separator: "\n"))
        }
        return values
    }

    /// The column of `key:` on the line (after an optional `- `) and what follows it.
    private static func keyValue(_ key: String, in line: String) -> (column: Int, rest: Substring)? {
        var column = line.prefix { $0 == " " }.count
        var rest = line.dropFirst(column)
        if rest.hasPrefix("- ") {
            rest = rest.dropFirst(2)
            column += 2
        }
        guard rest.hasPrefix("\(key):") else { return nil }
        return (column, rest.dropFirst(key.count + 1))
    }

    private static func unquote(_ value: String) -> String {
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            return String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
        }
        if value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") {
            return String(value.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
        }
        return value
    }
}

/// The PromQL of a Grafana dashboard: every target's `expr`, and the queries of query variables.
enum DashboardReader {
    static func queries(in json: Any) -> [String] {
        var queries: [String] = []
        collect(json, into: &queries)
        return queries
    }

    private static func collect(_ node: Any, into queries: inout [String]) {
        if let object = node as? [String: Any] {
            if let expr = object["expr"] as? String { queries.append(expr) }
            if object["type"] as? String == "query" {
                if let query = object["query"] as? String {
                    queries.append(query)
                } else if let query = (object["query"] as? [String: Any])?["query"] as? String {
                    queries.append(query)
                }
            }
            for value in object.values { collect(value, into: &queries) }
        } else if let array = node as? [Any] {
            for value in array { collect(value, into: &queries) }
        }
    }
}

/// The metric names a PromQL expression selects: its identifiers, less string literals, label
/// matchers (`{...}`), ranges and subqueries (`[...]`), numbers and durations, the label lists of
/// `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`, functions and aggregations
/// (an identifier before `(`, or an aggregation before `by`/`without`), keywords, and Grafana
/// variables (`$__rate_interval`, `${name}`).
enum PromQLNames {
    static let keywords: Set<String> = ["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"]
    static let labelListModifiers: Set<String> = ["by", "without", "on", "ignoring", "group_left", "group_right"]
    static let aggregations: Set<String> = [
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    ]

    static func metricNames(in expression: String) -> Set<String> {
        let characters = Array(expression.unicodeScalars)
        var names = Set<String>()
        var index = 0
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "#":
                while index < characters.count && characters[index] != "\n" { index += 1 }
            case "\"", "'", "`":
                index = skipString(characters, from: index)
            case "{":
                index = skipBalanced(characters, from: index, open: "{", close: "}")
            case "[":
                index = skipBalanced(characters, from: index, open: "[", close: "]")
            case "$":
                index += 1
                if index < characters.count && characters[index] == "{" {
                    index = skipBalanced(characters, from: index, open: "{", close: "}")
                } else {
                    while index < characters.count && isIdentifierPart(characters[index]) { index += 1 }
                }
            case _ where isDigit(character) || (character == "." && index + 1 < characters.count && isDigit(characters[index + 1])):
                // A number or a duration (`5m`, `1.5e3`, `0x1f`).
                while index < characters.count && (isIdentifierPart(characters[index]) || characters[index] == ".") { index += 1 }
            case _ where isIdentifierStart(character):
                let start = index
                while index < characters.count && isIdentifierPart(characters[index]) { index += 1 }
                let identifier = String(String.UnicodeScalarView(characters[start..<index]))
                let lowercased = identifier.lowercased()
                var next = index
                while next < characters.count && characters[next].properties.isWhitespace { next += 1 }
                let following = next < characters.count ? characters[next] : nil
                if labelListModifiers.contains(lowercased) {
                    if following == "(" { index = skipBalanced(characters, from: next, open: "(", close: ")") }
                } else if following == "(" || keywords.contains(lowercased) {
                    continue  // a function, an aggregation or a keyword
                } else if aggregations.contains(lowercased),
                    nextWord(characters, from: next).map({ ["by", "without"].contains($0.lowercased()) }) == true
                {
                    continue  // `sum by (...) (...)`
                } else {
                    names.insert(identifier)
                }
            default:
                index += 1
            }
        }
        return names
    }

    private static func nextWord(_ characters: [Unicode.Scalar], from start: Int) -> String? {
        var end = start
        while end < characters.count && isIdentifierPart(characters[end]) { end += 1 }
        return end > start ? String(String.UnicodeScalarView(characters[start..<end])) : nil
    }

    /// The index after the string literal starting at `start` (backquoted strings have no escapes).
    private static func skipString(_ characters: [Unicode.Scalar], from start: Int) -> Int {
        let quote = characters[start]
        var index = start + 1
        while index < characters.count {
            if characters[index] == "\\" && quote != "`" {
                index += 2
                continue
            }
            if characters[index] == quote { return index + 1 }
            index += 1
        }
        return index
    }

    /// The index after the bracket that closes the one at `start`, string literals inside skipped.
    private static func skipBalanced(_ characters: [Unicode.Scalar], from start: Int, open: Unicode.Scalar, close: Unicode.Scalar) -> Int {
        var depth = 0
        var index = start
        while index < characters.count {
            let character = characters[index]
            if character == "\"" || character == "'" || character == "`" {
                index = skipString(characters, from: index)
                continue
            }
            if character == open { depth += 1 }
            if character == close {
                depth -= 1
                if depth == 0 { return index + 1 }
            }
            index += 1
        }
        return index
    }

    private static func isDigit(_ character: Unicode.Scalar) -> Bool { ("0"..."9").contains(character) }
    private static func isIdentifierStart(_ character: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(character) || ("A"..."Z").contains(character) || character == "_" || character == ":"
    }
    private static func isIdentifierPart(_ character: Unicode.Scalar) -> Bool { isIdentifierStart(character) || isDigit(character) }
}

@Suite("Metric names: the PromQL name extractor")
struct MetricNamesExtractorTests {
    @Test("selectors, functions, aggregations, modifiers, strings, ranges, numbers and Grafana variables")
    func extractsOnlyMetricNames() {
        #expect(
            PromQLNames.metricNames(
                in: #"histogram_quantile(0.99, sum by (service, le) (rate(http_server_request_duration_bucket{route!~"/a|/b"}[$__rate_interval])))"#)
                == ["http_server_request_duration_bucket"])
        #expect(
            PromQLNames.metricNames(in: "time() - max(payout_last_completed_run_cutoff_seconds) > 30 * 3600") == [
                "payout_last_completed_run_cutoff_seconds"
            ])
        #expect(
            PromQLNames.metricNames(in: "max(a_total and on (instance) (b == 1)) unless ignoring (x) group_left (y) c offset 5m")
                == ["a_total", "b", "c"])
        #expect(PromQLNames.metricNames(in: #"sum without (kind) (increase(x_total{kind="sum(y)"}[1h:5m])) / on() bool z"#) == ["x_total", "z"])
        #expect(PromQLNames.metricNames(in: "service:http_requests:rate5m > 0.1 and ${DS} == $var") == ["service:http_requests:rate5m"])
        #expect(PromQLNames.metricNames(in: "absent(up{service=\"booking\"}) or vector(1e-3) # a comment naming nothing") == ["up"])
        #expect(PromQLNames.metricNames(in: #"label_replace(m, "dst", "$1", "src", "(.*)") @ start()"#) == ["m"])
    }

    @Test("rule files: inline, quoted, continued and block expressions, and recording rule names")
    func readsRuleFileExpressions() {
        let text = """
            groups:
              - name: g
                rules:
                  - record: level:metric:rate5m
                    expr: sum(rate(a_total[5m]))
                  - alert: B
                    expr: >-
                      max(b)
                        > 1
                    for: 5m
                  - alert: C
                    expr: "c{x=\\"y\\"} > 0"
                    labels:
                      severity: warning
                  - alert: D
                    expr: d
                      or e
            """
        #expect(RuleFileReader.values(of: "record", in: text) == ["level:metric:rate5m"])
        let expressions = RuleFileReader.values(of: "expr", in: text)
        #expect(expressions == ["sum(rate(a_total[5m]))", "max(b)\n> 1", #"c{x="y"} > 0"#, "d\nor e"])
        #expect(expressions.reduce(into: Set<String>()) { $0.formUnion(PromQLNames.metricNames(in: $1)) } == ["a_total", "b", "c", "d", "e"])
    }

    @Test("a histogram is exposed as _bucket, _sum and _count only; counters and gauges by their own name")
    func matchesHistogramSuffixes() {
        var exposition = Exposition()
        exposition.add(
            """
            # TYPE hb_requests counter
            hb_requests{http_route="/"} 1
            # TYPE http_server_request_duration histogram
            http_server_request_duration_bucket{le="0.1"} 1
            # TYPE pool_connections_in_use gauge
            """)
        #expect(exposition.isExposed("hb_requests") && exposition.isExposed("pool_connections_in_use"))
        #expect(exposition.isExposed("http_server_request_duration_bucket") && exposition.isExposed("http_server_request_duration_count"))
        #expect(!exposition.isExposed("http_server_request_duration") && !exposition.isExposed("hb_requests_count"))
        #expect(!exposition.isExposed("http_server_request_duration_seconds_bucket"))
    }
}
