import Postgres
import TestSupport
import Testing

@Suite("Postgres connection timeouts and keepalives")
struct PostgresConnectionSettingsTests {
    @Test("every session has tcp_user_timeout, keepalives and connect_timeout from the configuration")
    func defaultsReachTheSession() async throws {
        var configuration = try PostgresClient.Configuration(url: try TestEnvironment.databaseURL())
        configuration.maximumConnections = 1
        let client = PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { await client.shutdown() } }
        let settings = try await client.withConnection { connection in
            try await connection.query("SELECT 1")
            return await connection.sessionSettings
        }
        #expect(settings?["tcp_user_timeout"] == "10000")
        #expect(settings?["keepalives"] == "1")
        #expect(settings?["keepalives_idle"] == "10")
        #expect(settings?["keepalives_interval"] == "5")
        #expect(settings?["keepalives_count"] == "2")
        #expect(settings?["connect_timeout"] == "5")
    }

    @Test("values the URL sets win over the configuration's, and the URL's options are kept")
    func urlWins() async throws {
        let base = try TestEnvironment.databaseURL()
        let url =
            base + (base.contains("?") ? "&" : "?") + "keepalives_idle=7&tcp_user_timeout=4000&connect_timeout=3"
            + "&options=-c%20search_path%3Durl_schema"
        var configuration = try PostgresClient.Configuration(url: url)
        configuration.maximumConnections = 1
        configuration.keepalivesInterval = .seconds(9)
        let client = PostgresClient(configuration: configuration, logger: TestEnvironment.logger)
        defer { Task { await client.shutdown() } }
        let (settings, searchPath, timeZone) = try await client.withConnection { connection in
            let rows = try await connection.query("SELECT current_setting('search_path'), current_setting('TimeZone')")
            return (await connection.sessionSettings, try rows[0].decode(String.self, at: 0), try rows[0].decode(String.self, at: 1))
        }
        #expect(settings?["keepalives_idle"] == "7")
        #expect(settings?["tcp_user_timeout"] == "4000")
        #expect(settings?["connect_timeout"] == "3")
        #expect(settings?["keepalives_interval"] == "9")
        #expect(searchPath == "url_schema")
        #expect(timeZone == "UTC")
    }
}
