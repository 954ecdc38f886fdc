import Foundation
import Redis
import TestSupport
import Testing

@Suite("Redis client")
struct RedisClientTests {
    let client: RedisClient
    /// Every key of this suite run starts with this, so suites never touch each other's keys.
    let prefix = "test:\(UUID().uuidString.lowercased()):"

    init() throws {
        // 500 tasks queue on 4 connections in `manyTasks`: the wait bounds a hang, not a latency.
        client = try RedisClient.forTests(connections: 4, maximumWait: .seconds(30))
    }

    @Test("blocked XREADGROUP ... BLOCK readers do not block the cooperative pool")
    func blockedReadersLeaveThePoolFree() async throws {
        let stream = prefix + "blocking"
        try await client.createGroup("g", on: stream, startingAt: "$")
        // Four readers block for 2 s each on their own connections. If a blocked read held a cooperative
        // thread (2 on this machine), an unrelated 100 ms sleep could not finish before the reads return;
        // the bound sits well under the 2 s, with room for a machine busy with the other suites.
        let readers = (0..<4).map { client.makeStreamReader(name: "r\($0)", maximumBlock: .seconds(2)) }
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, reader) in readers.enumerated() {
                group.addTask {
                    let entries = try await reader.readGroup(
                        group: "g", consumer: "c\(index)", streams: [(stream, ">")], count: 10, block: .seconds(2))
                    #expect(entries.isEmpty)
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            let sleepStart = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(100))
            let sleepTook = ContinuousClock.now - sleepStart
            #expect(sleepTook < .milliseconds(1500), "a 100 ms sleep took \(sleepTook) while 4 readers were blocked")
            // Pooled commands are not held up by the readers either.
            try await client.send("SET", RedisArgument(prefix + "k"), "v")
            try await group.waitForAll()
        }
        let total = ContinuousClock.now - started
        #expect(total >= .milliseconds(1900))
        #expect(total < .seconds(6), "in series they would take 8 s")
        for reader in readers { await reader.close() }
    }

    @Test("500 concurrent tasks over 4 connections all complete with correct results")
    func manyTasks() async throws {
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<500 {
                group.addTask {
                    let key = RedisArgument(prefix + "n\(index)")
                    try await client.send("SET", key, RedisArgument(index))
                    return try await client.send("GET", key).integer == Int64(index)
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 500)
        #expect(results.allSatisfy { $0 })
    }

    @Test("a tiny wait limit fails excess callers with poolExhausted")
    func poolExhausted() async throws {
        let tiny = try RedisClient.forTests(connections: 1, maximumWait: .milliseconds(20))
        defer { Task { await tiny.shutdown() } }
        let reader = prefix + "exhaust"
        let outcomes = await withTaskGroup(of: RedisError.Code?.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    do {
                        // BLPOP on an empty list holds the connection for 300 ms.
                        try await tiny.send("BLPOP", RedisArgument(reader), "0.3")
                        return nil
                    } catch let error as RedisError {
                        return error.code
                    } catch {
                        return .server
                    }
                }
            }
            return await group.reduce(into: [RedisError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count >= 1)
        #expect(outcomes.filter { $0 == .poolExhausted }.count >= 5)
        #expect(outcomes.allSatisfy { $0 == nil || $0 == .poolExhausted })
    }

    @Test("values with embedded NUL bytes round-trip")
    func binarySafe() async throws {
        let value: [UInt8] = [0x61, 0x00, 0x62, 0x00, 0x00, 0xFF, 0x0A]
        let key = RedisArgument(bytes: Array((prefix + "bin\u{0}key").utf8))
        try await client.send("SET", key, RedisArgument(bytes: value))
        #expect(try await client.send("GET", key).bytes == value)
        #expect(try await client.send("STRLEN", key).integer == 7)
        #expect(try await client.send("GET", RedisArgument(prefix + "missing")).isNull)
    }

    @Test("error replies are typed; the connection stays usable")
    func errorReplies() async throws {
        let key = RedisArgument(prefix + "list")
        try await client.send("RPUSH", key, "a")
        let error = await #expect(throws: RedisError.self) { try await client.send("INCR", key) }
        #expect(error?.code == .server)
        #expect(error?.message.hasPrefix("WRONGTYPE") == true)
        #expect(try await client.send("LLEN", key).integer == 1)
    }

    @Test("scripts run by digest and load themselves when the server does not know them")
    func scripts() async throws {
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        let key = RedisArgument(prefix + "counter")
        #expect(try await client.evaluate(script, keys: [key], arguments: ["5"]).integer == 5)
        #expect(try await client.evaluate(script, keys: [key], arguments: ["2"]).integer == 7)
    }

    @Test("a script's own digest is the one the server knows it by, multi-byte text and all")
    func scriptDigests() async throws {
        let sources = ["return 1", "return 'ünïcödé ✓ \u{1F600}'", String(repeating: "-- a long comment\n", count: 200) + "return 2"]
        for source in sources {
            let loaded = try await client.send("SCRIPT", "LOAD", RedisArgument(source)).string
            #expect(RedisScript(source).digest == loaded)
        }
    }

    @Test("pipelines send every command before reading, keeping per-command errors")
    func pipeline() async throws {
        let key = RedisArgument(prefix + "p")
        let replies = try await client.pipeline([["SET", key, "1"], ["INCR", key], ["HGET", key, "f"], ["GET", key]])
        #expect(replies.count == 4)
        #expect(replies[1].integer == 2)
        if case .error(let message) = replies[2] { #expect(message.hasPrefix("WRONGTYPE")) } else { Issue.record("expected an error reply") }
        #expect(replies[3].integer == 2)
    }

    @Test("stream commands: XADD with MAXLEN ~, groups, XREADGROUP, XACK, XPENDING, XAUTOCLAIM, XINFO GROUPS")
    func streams() async throws {
        let stream = prefix + "events"
        #expect(try await client.createGroup("workers", on: stream) == true)
        #expect(try await client.createGroup("workers", on: stream) == false)  // BUSYGROUP is not an error
        var ids: [String] = []
        for index in 0..<5 {
            ids.append(try await client.xadd(stream, approximateMaxLength: 100_000, fields: [("envelope", Array("e\(index)".utf8)), ("n", [0, 1])]))
        }
        let reader = client.makeStreamReader(name: "streams")
        defer { Task { await reader.close() } }
        let first = try await reader.readGroup(group: "workers", consumer: "a", streams: [(stream, ">")], count: 3, block: .milliseconds(100))
        #expect(first[stream]?.map(\.id) == Array(ids.prefix(3)))
        #expect(first[stream]?.first?.string("envelope") == "e0")
        #expect(first[stream]?.first?.fields["n"] == [0, 1])
        #expect(try await client.xack(stream, group: "workers", ids: [ids[0]]) == 1)
        let pending = try await client.xpending(stream, group: "workers")
        #expect(pending.map(\.id) == [ids[1], ids[2]])
        #expect(pending.allSatisfy { $0.consumer == "a" && $0.deliveries == 1 })
        try await Task.sleep(for: .milliseconds(60))
        let claimed = try await client.xautoclaim(stream, group: "workers", consumer: "b", minimumIdle: .milliseconds(50))
        #expect(claimed.entries.map(\.id) == [ids[1], ids[2]])
        let afterClaim = try await client.xpending(stream, group: "workers")
        #expect(afterClaim.allSatisfy { $0.consumer == "b" && $0.deliveries == 2 })
        let groups = try await client.xinfoGroups(stream)
        #expect(groups.count == 1)
        #expect(groups.first?.name == "workers")
        #expect(groups.first?.pending == 2)
        #expect(groups.first?.lastDeliveredID == ids[2])
        #expect(groups.first?.lag == 2)
        // A group that does not exist is a typed NOGROUP error.
        let noGroup = await #expect(throws: RedisError.self) {
            try await reader.readGroup(group: "missing", consumer: "a", streams: [(stream, ">")], count: 1, block: .milliseconds(10))
        }
        #expect(noGroup?.code == .noGroup)
    }

    @Test("an integer argument is its decimal text, however large or negative")
    func integerArguments() {
        var generator = SystemRandomNumberGenerator()
        let samples: [Int64] =
            [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
            + (0..<200).map { _ in Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...62, using: &generator) }
        for value in samples {
            #expect(RedisArgument(value).bytes == Array(String(value).utf8), "\(value)")
            #expect(RedisArgument(Int(value)).bytes == Array(String(value).utf8), "\(value)")
            #expect(RedisArgument(Int32(truncatingIfNeeded: value)).bytes == Array(String(Int32(truncatingIfNeeded: value)).utf8))
        }
    }

    @Test("a malformed URL is refused up front")
    func malformedURL() {
        #expect(throws: RedisError.self) { try RedisClient.Configuration(url: "http://localhost:6379") }
        #expect(throws: RedisError.self) { try RedisClient.Configuration(url: "redis://localhost:6379/notanumber") }
        #expect((try? RedisClient.Configuration(url: "redis://:s3cret@cache:6380/2"))?.database == 2)
    }
}
