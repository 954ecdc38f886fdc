import Foundation
import TestSupport
import Testing

@testable import Redis

@Suite("Redis shared connections")
struct RedisSharedConnectionTests {
    /// Every key of this suite run starts with this, so suites never touch each other's keys.
    let prefix = "test:\(UUID().uuidString.lowercased()):"

    /// A client whose shareable commands all go through one connection.
    private func client(pooled: Int = 2) throws -> RedisClient {
        var configuration = try RedisClient.Configuration(url: TestEnvironment.redisURL())
        configuration.maximumConnections = pooled
        configuration.sharedConnections = 1
        // Above the 5 s BLPOP below: a pooled connection's socket times out after the command timeout.
        configuration.commandTimeout = .seconds(15)
        return RedisClient(configuration: configuration, logger: TestEnvironment.logger)
    }

    @Test("300 concurrent callers on one shared connection share round trips and each gets its own reply, error replies included")
    func callersShareRoundTrips() async throws {
        let client = try client()
        defer { Task { await client.shutdown() } }
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<300 {
                group.addTask {
                    let key = RedisArgument(prefix + "n\(index)")
                    if index % 3 == 0 {
                        // A string that is not a number: INCR fails for this caller only.
                        try await client.send("SET", key, RedisArgument("x\(index)"))
                        let error = await #expect(throws: RedisError.self) { try await client.send("INCR", key) }
                        let value = try await client.send("GET", key).string
                        return error?.code == .server && value == "x\(index)"
                    }
                    try await client.send("SET", key, RedisArgument(index))
                    let replies = try await client.pipeline([["INCRBY", key, "1000"], ["GET", key]])
                    return replies == [.integer(Int64(index + 1000)), .bulk(Array(String(index + 1000).utf8))]
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.count == 300)
        #expect(outcomes.allSatisfy { $0 })
        let statistics = client.sharedConnectionStatistics
        // 100 callers x 3 commands + 200 callers x 3 commands (the pipeline counts 2): 700 round trips
        // if no round trip carried two callers' commands.
        #expect(statistics.commands == 900)
        #expect(statistics.roundTrips < 700, "no round trip carried two callers' commands: \(statistics)")
    }

    @Test("a blocking command gets a connection of its own: commands sent while it blocks are answered first")
    func blockingCommandsDoNotHoldUpOthers() async throws {
        let client = try client()
        defer { Task { await client.shutdown() } }
        let list = RedisArgument(prefix + "empty-list")
        let blocked = Task {
            // BLPOP on an empty list blocks for 5 s, then answers nil: long enough that the SETs' round
            // trips fit in it on a loaded CI machine too.
            let reply = try await client.send("BLPOP", list, "5")
            return (reply, ContinuousClock.now)
        }
        try await Task.sleep(for: .milliseconds(100))
        for index in 0..<30 {
            try await client.send("SET", RedisArgument(prefix + "during\(index)"), "v")
        }
        let setsDone = ContinuousClock.now
        let (reply, blpopDone) = try await blocked.value
        #expect(reply.isNull)
        #expect(setsDone < blpopDone, "the SETs waited behind the BLPOP")
        #expect(client.sharedConnectionStatistics.commands == 30)
    }

    @Test("commands that block or change the connection's state never share it")
    func classification() {
        for shared: [RedisArgument] in [
            ["GET", "k"], ["set", "k", "v"], ["EVALSHA", "d", "0"], ["XADD", "s", "*", "f", "v"],
            ["XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "s", ">"], ["XREAD", "STREAMS", "s", "0"],
        ] {
            #expect(RedisClient.sharesConnection(shared), "\(shared)")
        }
        for own: [RedisArgument] in [
            ["BLPOP", "k", "1"], ["brpop", "k", "1"], ["MULTI"], ["EXEC"], ["WATCH", "k"], ["SELECT", "2"],
            ["CLIENT", "SETNAME", "x"], ["SUBSCRIBE", "c"], ["WAIT", "1", "0"], ["DEBUG", "SLEEP", "1"],
            ["XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "s", ">"], ["xread", "block", "0", "STREAMS", "s", "$"],
        ] {
            #expect(!RedisClient.sharesConnection(own), "\(own)")
        }
    }

    @Test("after shutdown every command fails with a clear error instead of waiting")
    func closedClientFails() async throws {
        let client = try client()
        try await client.send("PING")
        await client.shutdown()
        let error = await #expect(throws: RedisError.self) { try await client.send("GET", RedisArgument(prefix + "k")) }
        #expect(error?.code == .poolExhausted)
        #expect(error?.message.contains("closed") == true)
    }
}
