import ArgumentParser
import ServiceKit
import Testing

@Suite("serve: every setting a flag and an environment variable")
struct ServeOptionsTests {
    @Test("each shared setting is a flag named after its environment variable, and its help names the variable")
    func sharedNames() throws {
        #expect(
            try SettingOptions.names(of: ServiceOptions.self) == [
                "HOST", "PORT", "LOG_LEVEL", "ADMIN_TOKEN", "ADMIN_TOKEN_PREVIOUS", "API_KEYS", "DATABASE_URL", "DATABASE_POOL_SIZE",
                "DATABASE_CONSUMER_POOL_SIZE",
                "DATABASE_SHARED_CONNECTIONS", "DATABASE_POOL_WAIT", "DATABASE_CONNECT_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT", "REDIS_URL",
                "REDIS_POOL_SIZE",
                "REDIS_SHARED_CONNECTIONS", "REDIS_POOL_WAIT",
                "REDIS_COMMAND_TIMEOUT", "MAX_BODY_BYTES", "HTTP_IDLE_TIMEOUT", "HTTP_MAX_CONNECTIONS", "SHUTDOWN_DRAIN_DELAY", "OUTBOX_RETENTION",
                "DEAD_LETTER_RETENTION", "INBOX_RETENTION",
            ])
        #expect(try SettingOptions.undocumentedNames(of: ServiceOptions.self) == [])
        let help = ServiceOptions.helpMessage(columns: 400)
        #expect(help.contains("--database-url <database-url>"))
        #expect(help.contains("--http-max-connections <http-max-connections>"))
    }

    @Test("flags win over the environment, which wins over defaults; an empty flag or variable counts as unset")
    func precedence() throws {
        let options = try ServiceOptions.parse(["--port", "9000", "--log-level", "", "--admin-token", "flag-token"])
        let reader = ConfigurationReader(
            flags: SettingOptions.values(of: options),
            environment: [
                "PORT": "8000", "LOG_LEVEL": "debug", "ADMIN_TOKEN": "env-token", "DATABASE_URL": "postgres://u@127.0.0.1/db",
                "REDIS_URL": "redis://127.0.0.1:6379", "HOST": "",
            ])
        let settings = try ServiceSettings(serviceName: "s", defaultPort: 1, requiresAPIKeys: false, reader: reader)
        #expect(settings.port == 9000)
        #expect(settings.logLevel == .debug)
        #expect(settings.adminToken == "flag-token")
        #expect(settings.host == "0.0.0.0")
    }

    @Test("a bad flag fails like a bad variable: the setting's name, not a parser error")
    func invalidFlag() throws {
        let options = try ServiceOptions.parse(["--port", "http"])
        let reader = ConfigurationReader(flags: SettingOptions.values(of: options), environment: [:])
        #expect(throws: ConfigurationError(name: "PORT", reason: "must be an integer from 1 to 65535")) {
            try reader.integer("PORT", default: 8080, in: 1...65535)
        }
    }
}
