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

    @Test("several scripts in one round trip: each its own result, an error reply only its own; after SCRIPT FLUSH reloaded")
    func scriptsTogether() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let client = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            defer { Task { await client.shutdown() } }
            let add = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            let fail = RedisScript("return redis.call('HGET', KEYS[1], 'f')")
            let calls = [
                RedisScriptCall(add, keys: ["counter"], arguments: ["5"]), RedisScriptCall(fail, keys: ["counter"], arguments: []),
                RedisScriptCall(add, keys: ["other"], arguments: ["2"]),
            ]
            func check(_ results: [Result<RedisReply, RedisError>], counter: Int64, other: Int64) {
                #expect(results.count == 3)
                #expect((try? results[0].get())?.integer == counter)
                if case .failure(let error) = results[1] { #expect(error.message.hasPrefix("WRONGTYPE")) } else { Issue.record("expected WRONGTYPE") }
                #expect((try? results[2].get())?.integer == other)
            }
            check(try await client.evaluate(calls), counter: 5, other: 2)
            let before = client.sharedConnectionStatistics
            check(try await client.evaluate(calls), counter: 10, other: 4)
            #expect(client.sharedConnectionStatistics.roundTrips - before.roundTrips == 1)
            try await client.send("SCRIPT", "FLUSH")
            check(try await client.evaluate(calls), counter: 15, other: 6)
        }
    }

    @Test("a script and its follow-up: sent on the connection when both are loaded, each run exactly once when the server lost one or both")
    func scriptWithFollowUp() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let client = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            defer { Task { await client.shutdown() } }
            let count = RedisScript("return redis.call('INCR', KEYS[1])")
            let add = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            let refuse = RedisScript("return redis.error_reply('REFUSED by the follow-up')")
            // The follow-up adds ten times the first step's count, and only after odd counts.
            func run(_ followUp: RedisScript = add) async throws -> (first: Int64?, then: Result<RedisReply, any Error>?) {
                let (first, then) = try await client.evaluate(RedisScriptCall(count, keys: ["follow:count"], arguments: [])) { reply in
                    guard let value = reply.integer, value % 2 == 1 else { return nil }
                    return RedisScriptCall(followUp, keys: ["follow:sum"], arguments: [RedisArgument(value * 10)])
                }
                return (first.integer, then)
            }
            func sum() async throws -> Int64? { try await client.send("GET", "follow:sum").integer }

            // The follow-up's script is not loaded yet: the caller runs it.
            var result = try await run()
            #expect(result.first == 1)
            #expect(try result.then?.get().integer == 10)
            // Not asked for after an even count.
            result = try await run()
            #expect(result.first == 2)
            #expect(result.then == nil)
            // Both loaded: one round trip each, no SCRIPT LOAD.
            let before = client.sharedConnectionStatistics
            result = try await run()
            #expect(result.first == 3)
            #expect(try result.then?.get().integer == 40)
            let after = client.sharedConnectionStatistics
            #expect(after.commands - before.commands == 2)
            #expect(after.roundTrips - before.roundTrips == 2)
            // The server lost both scripts: NOSCRIPT for the first step, both loaded and run once.
            try await client.send("INCR", "follow:count")
            try await client.send("SCRIPT", "FLUSH")
            result = try await run()
            #expect(result.first == 5)
            #expect(try result.then?.get().integer == 90)
            // The server knows the first script only: the follow-up's NOSCRIPT is loaded and run once.
            try await client.send("SCRIPT", "FLUSH")
            try await client.send("SCRIPT", "LOAD", RedisArgument(count.source))
            try await client.send("INCR", "follow:count")
            result = try await run()
            #expect(result.first == 7)
            #expect(try result.then?.get().integer == 160)
            #expect(try await sum() == 160)
            // A follow-up's error reply is its own; the first step's reply stays.
            try await client.send("INCR", "follow:count")
            result = try await run(refuse)
            #expect(result.first == 9)
            let refused = #expect(throws: RedisError.self) { try result.then?.get() }
            #expect(refused?.message.hasPrefix("REFUSED") == true)
            #expect(try await sum() == 160)
            // A first step's error reply throws, and no follow-up runs.
            try await client.send("SET", "follow:count", "not a number")
            await #expect(throws: RedisError.self) { try await run() }
            #expect(try await sum() == 160)
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
