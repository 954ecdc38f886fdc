import Redis
import TestSupport
import Testing

@Suite("Redis restarts")
struct RedisRestartTests {
    @Test("after a Redis restart the next calls succeed without restarting the process")
    func reconnectsAfterRestart() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let client = try RedisClient.forTests(url: servers.redisURL, connections: 3)
            defer { Task { await client.shutdown() } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<3 { group.addTask { try await client.send("SET", RedisArgument("k\(index)"), "v") } }
                try await group.waitForAll()
            }
            let reader = client.makeStreamReader(name: "restart")
            try await client.createGroup("g", on: "s")
            try await servers.restartRedis()
            for _ in 0..<6 {
                #expect(try await client.send("PING").string == "PONG")
            }
            // Restarted empty: the data is gone, and the group with it (NOGROUP), which a consumer recreates.
            #expect(try await client.send("GET", "k0").isNull)
            let error = await #expect(throws: RedisError.self) {
                try await reader.readGroup(group: "g", consumer: "c", streams: [("s", ">")], count: 1, block: .milliseconds(10))
            }
            #expect(error?.code == .noGroup)
            await reader.close()
        }
    }

    @Test("EVALSHA of a script after SCRIPT FLUSH still works")
    func scriptFlush() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let client = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            defer { Task { await client.shutdown() } }
            let script = RedisScript("return ARGV[1] .. ':' .. KEYS[1]")
            #expect(try await client.evaluate(script, keys: ["key"], arguments: ["arg"]).string == "arg:key")
            try await client.send("SCRIPT", "FLUSH")
            #expect(try await client.evaluate(script, keys: ["key"], arguments: ["again"]).string == "again:key")
            try await servers.restartRedis()
            #expect(try await client.evaluate(script, keys: ["k"], arguments: ["after-restart"]).string == "after-restart:k")
        }
    }

    @Test("while Redis is down commands fail fast with a typed connection error, then recover")
    func failsWhileDown() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let client = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            defer { Task { await client.shutdown() } }
            try await client.send("PING")
            try await servers.stopRedis()
            let started = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
            #expect(error?.isTransient == true)
            #expect(ContinuousClock.now - started < .seconds(3))
            try await servers.startRedis()
            #expect(try await client.send("PING").string == "PONG")
        }
    }
}
