import Foundation
import Logging
import NIOCore
import ServiceKit
import TestSupport
import Testing

@Suite("Configuration")
struct ConfigurationReaderTests {
    @Test("flags win over the environment, which wins over defaults; empty counts as unset")
    func precedence() throws {
        let reader = ConfigurationReader(flags: ["PORT": "9000", "HOST": nil], environment: ["PORT": "8000", "HOST": "127.0.0.1", "LOG_LEVEL": ""])
        #expect(try reader.integer("PORT", default: 1, in: 1...65535) == 9000)
        #expect(reader.string("HOST") == "127.0.0.1")
        #expect(try reader.logLevel() == .info)
        #expect(try ConfigurationReader(environment: [:]).integer("PORT", default: 8080, in: 1...65535) == 8080)
    }

    @Test("missing or invalid values name the setting and never echo it")
    func errors() {
        let reader = ConfigurationReader(environment: [
            "ADMIN_TOKEN": "  ", "SECRETS": "a,,b", "PORT": "http", "HOLD_TTL": "45m", "LOG_LEVEL": "loud",
        ])
        #expect(throws: ConfigurationError(name: "MISSING", reason: "is required")) { try reader.required("MISSING") }
        #expect(throws: ConfigurationError(name: "ADMIN_TOKEN", reason: "must not be blank")) { try reader.secret("ADMIN_TOKEN") }
        #expect(throws: ConfigurationError.self) { try reader.secretList("SECRETS") }
        #expect(throws: ConfigurationError.self) { try reader.integer("PORT", default: 1, in: 1...65535) }
        #expect(throws: ConfigurationError.self) { try reader.duration("HOLD_TTL", default: .seconds(600), in: .seconds(1)...(.seconds(1800))) }
        #expect(throws: ConfigurationError.self) { try reader.logLevel() }
    }

    @Test("durations accept ms, s, m, h and bare seconds")
    func durations() throws {
        let reader = ConfigurationReader(environment: ["A": "500ms", "B": "90s", "C": "15m", "D": "2h", "E": "30", "F": "-1s"])
        let range = Duration.zero...(.seconds(86_400))
        #expect(try reader.duration("A", default: .zero, in: range) == .milliseconds(500))
        #expect(try reader.duration("B", default: .zero, in: range) == .seconds(90))
        #expect(try reader.duration("C", default: .zero, in: range) == .seconds(900))
        #expect(try reader.duration("D", default: .zero, in: range) == .seconds(7200))
        #expect(try reader.duration("E", default: .zero, in: range) == .seconds(30))
        #expect(throws: ConfigurationError.self) { try reader.duration("F", default: .zero, in: range) }
    }

    @Test("INBOX_RETENTION defaults to 14 days and may not be shorter than OUTBOX_RETENTION")
    func inboxRetention() throws {
        let base = ["DATABASE_URL": "postgres://u@localhost:5432/db", "REDIS_URL": "redis://localhost:6379", "ADMIN_TOKEN": "t"]
        let defaults = try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: base))
        #expect(defaults.inboxRetention == .seconds(14 * 86_400) && defaults.outboxRetention == .seconds(72 * 3600))
        var shorter = base
        shorter["INBOX_RETENTION"] = "24h"
        #expect(throws: ConfigurationError.self) {
            try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: shorter))
        }
        shorter["OUTBOX_RETENTION"] = "12h"
        #expect(
            try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: shorter)).inboxRetention
                == .seconds(86_400))
    }

    @Test("DATABASE_SHARED_CONNECTIONS and REDIS_SHARED_CONNECTIONS: one each on up to 2 cores, two above; the environment overrides")
    func sharedConnections() throws {
        #expect([1, 2, 3, 4, 64].map { ServiceSettings.defaultSharedConnections(cores: $0) } == [1, 1, 2, 2, 2])
        let base = ["DATABASE_URL": "postgres://u@localhost:5432/db", "REDIS_URL": "redis://localhost:6379", "ADMIN_TOKEN": "t"]
        let defaults = try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: base))
        let expected = ServiceSettings.defaultSharedConnections(cores: System.coreCount)
        #expect(defaults.postgres.sharedConnections == expected && defaults.redis.sharedConnections == expected)
        var environment = base
        environment["DATABASE_SHARED_CONNECTIONS"] = "4"
        environment["REDIS_SHARED_CONNECTIONS"] = "3"
        let set = try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: environment))
        #expect(set.postgres.sharedConnections == 4 && set.redis.sharedConnections == 3)
        environment["REDIS_SHARED_CONNECTIONS"] = "0"
        let error = #expect(throws: ConfigurationError.self) {
            try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: environment))
        }
        #expect(error?.name == "REDIS_SHARED_CONNECTIONS")
    }

    @Test(
        "HTTP_IDLE_TIMEOUT, HTTP_MAX_CONNECTIONS and SHUTDOWN_DRAIN_DELAY: defaults 60 s, 4096 and 0, flags over environment, invalid values named"
    )
    func httpServerSettings() throws {
        let base = ["DATABASE_URL": "postgres://u@localhost:5432/db", "REDIS_URL": "redis://localhost:6379", "ADMIN_TOKEN": "t"]
        let defaults = try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: base))
        #expect(defaults.httpIdleTimeout == .seconds(60))
        #expect(defaults.httpMaximumConnections == 4096)
        #expect(defaults.shutdownDrainDelay == .zero)
        var environment = base
        environment["SHUTDOWN_DRAIN_DELAY"] = "10s"
        environment["HTTP_IDLE_TIMEOUT"] = "15s"
        environment["HTTP_MAX_CONNECTIONS"] = "100"
        let flagged = try ServiceSettings(
            serviceName: "s", defaultPort: 1, requiresAPIKeys: false,
            reader: .init(flags: ["HTTP_IDLE_TIMEOUT": "2m", "HTTP_MAX_CONNECTIONS": nil], environment: environment))
        #expect(flagged.httpIdleTimeout == .seconds(120))
        #expect(flagged.httpMaximumConnections == 100)
        #expect(flagged.shutdownDrainDelay == .seconds(10))
        let invalidValues = [
            ("HTTP_IDLE_TIMEOUT", "0s"), ("HTTP_IDLE_TIMEOUT", "soon"), ("HTTP_MAX_CONNECTIONS", "0"), ("SHUTDOWN_DRAIN_DELAY", "301s"),
            ("SHUTDOWN_DRAIN_DELAY", "-1s"), ("SHUTDOWN_DRAIN_DELAY", "later"),
        ]
        for (name, value) in invalidValues {
            var invalid = base
            invalid[name] = value
            let error = #expect(throws: ConfigurationError.self) {
                try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: invalid))
            }
            #expect(error?.name == name)
        }
    }

    @Test("service settings require the database, Redis and the admin token; API keys only where needed")
    func serviceSettings() throws {
        let base = ["DATABASE_URL": "postgres://u@localhost:5432/db", "REDIS_URL": "redis://localhost:6379", "ADMIN_TOKEN": "t"]
        #expect(try ServiceSettings(serviceName: "s", defaultPort: 8083, requiresAPIKeys: false, reader: .init(environment: base)).port == 8083)
        #expect(throws: ConfigurationError(name: "API_KEYS", reason: "is required")) {
            try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: true, reader: .init(environment: base))
        }
        for name in ["DATABASE_URL", "REDIS_URL", "ADMIN_TOKEN"] {
            var environment = base
            environment[name] = nil
            #expect(throws: ConfigurationError(name: name, reason: "is required")) {
                try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: environment))
            }
        }
        var badRedis = base
        badRedis["REDIS_URL"] = "localhost:6379"
        #expect(throws: ConfigurationError.self) {
            try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: .init(environment: badRedis))
        }
    }
}

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("each entry is one JSON object with timestamp, level, service, message and metadata")
    func format() throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        let handler = JSONLogHandler(label: "x", service: "booking", level: .info, output: JSONLineOutput(descriptor: descriptors[1]))
        var logger = Logger(label: "x", factory: { _ in handler })
        logger[metadataKey: "correlation_id"] = "abc"
        logger.debug("hidden")
        logger.info("seat \"A-1\"\nheld", metadata: ["seats": .array(["A-1", "A-2"]), "count": "2"])
        close(descriptors[1])
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(descriptors[0], &buffer, buffer.count)
        close(descriptors[0])
        let text = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["service"] as? String == "booking")
        #expect(object["message"] as? String == "seat \"A-1\"\nheld")
        #expect(object["correlation_id"] as? String == "abc")
        #expect(object["seats"] as? [String] == ["A-1", "A-2"])
        #expect((object["ts"] as? String)?.hasSuffix("Z") == true)
    }
}
