import Foundation
import TestSupport
import Testing

@testable import Redis

@Suite("Commands in Redis's wire format (RESP), encoded by the client")
struct RESPEncodingTests {
    static func encoded(_ arguments: [RedisArgument]) -> String {
        var buffer: [UInt8] = []
        RESP.encode(arguments, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    @Test("an array of bulk strings, lengths in bytes, binary-safe")
    func bytes() {
        #expect(Self.encoded(["SET", "k", "v"]) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        #expect(Self.encoded(["PING"]) == "*1\r\n$4\r\nPING\r\n")
        #expect(Self.encoded(["SET", "k", ""]) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
        #expect(Self.encoded(["SET", "a\r\nb", "é"]) == "*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$2\r\né\r\n")
        for length in [9, 10, 11, 99, 100, 101, 999, 1_000, 65_536, 1_234_567] {
            let argument = RedisArgument(bytes: [UInt8](repeating: 0x78, count: length))
            #expect(Self.encoded(["GET", argument]).hasPrefix("*2\r\n$3\r\nGET\r\n$\(length)\r\nxxx"), "\(length)")
        }
        let many = (0..<12).map { RedisArgument($0) }
        #expect(Self.encoded(many).hasPrefix("*12\r\n$1\r\n0\r\n"))
        #expect(Self.encoded(many).hasSuffix("$2\r\n10\r\n$2\r\n11\r\n"))
    }

    @Test("on a real server: values of every length class round-trip, in one round trip and one by one, past the kept buffer's size")
    func roundTrips() async throws {
        let client = try RedisClient.forTests(connections: 2)
        let prefix = "test:\(UUID().uuidString.lowercased()):resp:"
        let lengths = [0, 1, 9, 10, 99, 100, 4_096, 70_000, 2 << 20]
        let values = lengths.map { length in (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }
        // One round trip with every SET, then every GET (the shared connection batches them).
        let sets = values.enumerated().map { index, value -> [RedisArgument] in
            ["SET", RedisArgument(prefix + "\(index)"), RedisArgument(bytes: value)]
        }
        #expect(try await client.pipeline(sets).allSatisfy { $0 == .status("OK") })
        let replies = try await client.pipeline(values.indices.map { ["GET", RedisArgument(prefix + "\($0)")] })
        #expect(replies.map(\.bytes) == values.map { Optional($0) })
        // One by one, after the largest batch: the kept buffer starts over smaller.
        for (index, value) in values.enumerated().reversed() {
            #expect(try await client.send("STRLEN", RedisArgument(prefix + "\(index)")).integer == Int64(value.count))
        }
        _ = try await client.send(["DEL"] + values.indices.map { RedisArgument(prefix + "\($0)") })
        await client.shutdown()
    }
}
