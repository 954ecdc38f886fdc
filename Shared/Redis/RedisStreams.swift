import ConnectionKit
import SharedModel

/// One stream entry: its id and its field/value pairs (values are binary-safe).
public struct RedisStreamEntry: Sendable, Hashable {
    public let id: String
    public let fields: [String: [UInt8]]

    public init(id: String, fields: [String: [UInt8]]) {
        self.id = id
        self.fields = fields
    }

    /// A field's value as UTF-8 text.
    public func string(_ field: String) -> String? {
        fields[field].map { String(decoding: $0, as: UTF8.self) }
    }
}

/// One entry of `XPENDING`'s extended form: who holds it, for how long, and how often it was delivered.
public struct RedisPendingEntry: Sendable, Hashable {
    public let id: String
    public let consumer: String
    public let idle: Duration
    public let deliveries: Int
}

/// One consumer group as `XINFO GROUPS` reports it.
public struct RedisGroupInfo: Sendable, Hashable {
    public let name: String
    public let consumers: Int
    public let pending: Int
    public let lastDeliveredID: String
    /// Entries not yet delivered to the group (Redis 7+; nil when the server cannot tell).
    public let lag: Int?
}

/// One consumer of a group as `XINFO CONSUMERS` reports it.
public struct RedisConsumerInfo: Sendable, Hashable {
    /// The consumer's name in its group.
    public let name: String
    /// Entries delivered to it and not acknowledged.
    public let pending: Int
    /// Time since it last read or claimed entries (Redis 7.0 counts only reads that returned entries;
    /// 7.2 and later count every attempt).
    public let idle: Duration
}

/// A stream entry id (`<milliseconds>-<sequence>`), ordered as Redis orders them.
public struct RedisStreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let milliseconds: UInt64
    public let sequence: UInt64

    /// Parses `ms-seq` (or a bare `ms`, sequence 0); nil when it is not an entry id.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let milliseconds = UInt64(parts[0]) else { return nil }
        let sequence = parts.count == 2 ? UInt64(parts[1]) : 0
        guard let sequence else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// The id `milliseconds-sequence`.
    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// The smallest id after this one.
    public var successor: RedisStreamID {
        sequence == .max
            ? RedisStreamID(milliseconds: milliseconds &+ 1, sequence: 0) : RedisStreamID(milliseconds: milliseconds, sequence: sequence + 1)
    }

    /// The id as Redis writes it, `ms-seq`.
    public var description: String { "\(milliseconds)-\(sequence)" }

    /// Redis' order: by time, then by sequence.
    public static func < (lhs: RedisStreamID, rhs: RedisStreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}

/// The result of `XAUTOCLAIM`: the cursor to continue from, the entries now owned by the caller, and the
/// ids that were pending but no longer exist in the stream.
public struct RedisAutoClaim: Sendable {
    public let nextStart: String
    public let entries: [RedisStreamEntry]
    public let deletedIDs: [String]
}

extension RedisClient {
    /// The arguments of `XADD stream [MAXLEN ~ n] * field value ...`, for pipelines.
    public static func xaddArguments(stream: String, approximateMaxLength: Int?, fields: [(String, [UInt8])]) -> [RedisArgument] {
        var arguments: [RedisArgument] = ["XADD", RedisArgument(stream)]
        if let approximateMaxLength {
            arguments += ["MAXLEN", "~", RedisArgument(approximateMaxLength)]
        }
        arguments.append("*")
        for (field, value) in fields {
            arguments.append(RedisArgument(field))
            arguments.append(RedisArgument(bytes: value))
        }
        return arguments
    }

    /// Appends an entry and returns its id. `approximateMaxLength` trims old entries with `MAXLEN ~`.
    @discardableResult
    public func xadd(_ stream: String, approximateMaxLength: Int? = nil, fields: [(String, [UInt8])]) async throws -> String {
        let reply = try await send(Self.xaddArguments(stream: stream, approximateMaxLength: approximateMaxLength, fields: fields))
        guard let id = reply.string else { throw RedisError.unexpected(reply, expected: "an entry id") }
        return id
    }

    /// `XRANGE stream start end [COUNT n]`: entries in id order, inclusive bounds.
    public func xrange(_ stream: String, from start: String = "-", to end: String = "+", count: Int? = nil) async throws -> [RedisStreamEntry] {
        var arguments: [RedisArgument] = ["XRANGE", RedisArgument(stream), RedisArgument(start), RedisArgument(end)]
        if let count { arguments += ["COUNT", RedisArgument(count)] }
        return try Self.entries(try await send(arguments))
    }

    /// Creates a consumer group (and the stream with `MKSTREAM`). Returns false when it already exists.
    @discardableResult
    public func createGroup(_ group: String, on stream: String, startingAt id: String = "0", makeStream: Bool = true) async throws -> Bool {
        var arguments: [RedisArgument] = ["XGROUP", "CREATE", RedisArgument(stream), RedisArgument(group), RedisArgument(id)]
        if makeStream { arguments.append("MKSTREAM") }
        do {
            try await send(arguments)
            return true
        } catch let error as RedisError where error.code == .busyGroup {
            return false
        }
    }

    /// Acknowledges entries; returns how many were pending.
    @discardableResult
    public func xack(_ stream: String, group: String, ids: [String]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let reply = try await send(["XACK", RedisArgument(stream), RedisArgument(group)] + ids.map { RedisArgument($0) })
        return Int(reply.integer ?? 0)
    }

    /// Transfers entries idle longer than `minimumIdle` to `consumer` (`XAUTOCLAIM`).
    public func xautoclaim(
        _ stream: String,
        group: String,
        consumer: String,
        minimumIdle: Duration,
        start: String = "0-0",
        count: Int = 100
    ) async throws -> RedisAutoClaim {
        let reply = try await send([
            "XAUTOCLAIM", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer),
            RedisArgument(minimumIdle.wholeMilliseconds), RedisArgument(start), "COUNT", RedisArgument(count),
        ])
        guard let parts = reply.array, parts.count >= 2, let next = parts[0].string else {
            throw RedisError.unexpected(reply, expected: "an XAUTOCLAIM reply")
        }
        let deleted = parts.count > 2 ? (parts[2].array ?? []).compactMap(\.string) : []
        return RedisAutoClaim(nextStart: next, entries: try Self.entries(parts[1]), deletedIDs: deleted)
    }

    /// Resets the idle time of entries this consumer holds, without delivering them again
    /// (`XCLAIM stream group consumer 0 id... JUSTID`): another consumer's `XAUTOCLAIM` then sees them as
    /// fresh. Returns the ids still pending (an entry acknowledged or deleted meanwhile is missing).
    @discardableResult
    public func refreshClaim(_ stream: String, group: String, consumer: String, ids: [String]) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let reply = try await send(
            ["XCLAIM", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer), "0"] + ids.map { RedisArgument($0) } + ["JUSTID"])
        guard let items = reply.array else { throw RedisError.unexpected(reply, expected: "an XCLAIM JUSTID list") }
        return items.compactMap(\.string)
    }

    /// The consumers of a group (`XINFO CONSUMERS`).
    public func xinfoConsumers(_ stream: String, group: String) async throws -> [RedisConsumerInfo] {
        let reply = try await send(["XINFO", "CONSUMERS", RedisArgument(stream), RedisArgument(group)])
        guard let consumers = reply.array else { throw RedisError.unexpected(reply, expected: "an XINFO CONSUMERS list") }
        return try consumers.map { consumer in
            let map = try Self.fieldMap(consumer)
            guard let name = map["name"]?.string, let pending = map["pending"]?.integer, let idle = map["idle"]?.integer else {
                throw RedisError.unexpected(consumer, expected: "an XINFO CONSUMERS entry")
            }
            return RedisConsumerInfo(name: name, pending: Int(pending), idle: .milliseconds(idle))
        }
    }

    /// Removes a consumer from a group (`XGROUP DELCONSUMER`); returns how many pending entries it had
    /// (those are dropped from the group's pending list, so call it only for consumers without any).
    @discardableResult
    public func deleteConsumer(_ consumer: String, group: String, stream: String) async throws -> Int {
        let reply = try await send(["XGROUP", "DELCONSUMER", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer)])
        return Int(reply.integer ?? 0)
    }

    /// The oldest pending entry of a group (`XPENDING stream group` summary form); nil when none is pending.
    public func oldestPendingID(_ stream: String, group: String) async throws -> String? {
        let reply = try await send(["XPENDING", RedisArgument(stream), RedisArgument(group)])
        guard let parts = reply.array, parts.count >= 2, let count = parts[0].integer else {
            throw RedisError.unexpected(reply, expected: "an XPENDING summary")
        }
        return count > 0 ? parts[1].string : nil
    }

    /// Removes entries with ids below `minimumID` (`XTRIM stream MINID ~ id`: whole macro nodes only, so
    /// possibly fewer); never an entry at or above it. Returns how many were removed.
    @discardableResult
    public func trim(_ stream: String, below minimumID: RedisStreamID) async throws -> Int {
        let reply = try await send(["XTRIM", RedisArgument(stream), "MINID", "~", RedisArgument(minimumID.description)])
        return Int(reply.integer ?? 0)
    }

    /// The pending entries of a group in id order (`XPENDING stream group [IDLE ms] start end count [consumer]`).
    public func xpending(
        _ stream: String,
        group: String,
        minimumIdle: Duration? = nil,
        start: String = "-",
        end: String = "+",
        count: Int = 100,
        consumer: String? = nil
    ) async throws -> [RedisPendingEntry] {
        var arguments: [RedisArgument] = ["XPENDING", RedisArgument(stream), RedisArgument(group)]
        if let minimumIdle { arguments += ["IDLE", RedisArgument(minimumIdle.wholeMilliseconds)] }
        arguments += [RedisArgument(start), RedisArgument(end), RedisArgument(count)]
        if let consumer { arguments.append(RedisArgument(consumer)) }
        let reply = try await send(arguments)
        guard let rows = reply.array else { throw RedisError.unexpected(reply, expected: "an XPENDING list") }
        return try rows.map { row in
            guard let fields = row.array, fields.count == 4, let id = fields[0].string, let owner = fields[1].string,
                let idle = fields[2].integer, let deliveries = fields[3].integer
            else { throw RedisError.unexpected(row, expected: "an XPENDING entry") }
            return RedisPendingEntry(id: id, consumer: owner, idle: .milliseconds(idle), deliveries: Int(deliveries))
        }
    }

    /// The stream's consumer groups (`XINFO GROUPS`).
    public func xinfoGroups(_ stream: String) async throws -> [RedisGroupInfo] {
        let reply = try await send(["XINFO", "GROUPS", RedisArgument(stream)])
        guard let groups = reply.array else { throw RedisError.unexpected(reply, expected: "an XINFO GROUPS list") }
        return try groups.map { group in
            let map = try Self.fieldMap(group)
            guard let name = map["name"]?.string, let consumers = map["consumers"]?.integer, let pending = map["pending"]?.integer,
                let last = map["last-delivered-id"]?.string
            else { throw RedisError.unexpected(group, expected: "an XINFO GROUPS entry") }
            return RedisGroupInfo(
                name: name, consumers: Int(consumers), pending: Int(pending), lastDeliveredID: last, lag: map["lag"]?.integer.map(Int.init))
        }
    }

    /// Parses a flat `[key, value, key, value, ...]` reply.
    static func fieldMap(_ reply: RedisReply) throws(RedisError) -> [String: RedisReply] {
        guard let items = reply.array, items.count % 2 == 0 else { throw RedisError.unexpected(reply, expected: "a field list") }
        var map: [String: RedisReply] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let key = items[index].string else { throw RedisError.unexpected(reply, expected: "a field name") }
            map[key] = items[index + 1]
        }
        return map
    }

    /// Parses a list of `[id, [field, value, ...]]` entries. Entries whose fields are nil (deleted while
    /// pending) come back with no fields.
    static func entries(_ reply: RedisReply) throws(RedisError) -> [RedisStreamEntry] {
        guard let items = reply.array else {
            if reply.isNull { return [] }
            throw RedisError.unexpected(reply, expected: "a list of stream entries")
        }
        var entries: [RedisStreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard let pair = item.array, pair.count == 2, let id = pair[0].string else {
                throw RedisError.unexpected(item, expected: "a stream entry")
            }
            var fields: [String: [UInt8]] = [:]
            if let values = pair[1].array {
                guard values.count % 2 == 0 else { throw RedisError.unexpected(item, expected: "field/value pairs") }
                for index in stride(from: 0, to: values.count, by: 2) {
                    guard let field = values[index].string else { throw RedisError.unexpected(item, expected: "a field name") }
                    fields[field] = values[index + 1].bytes ?? []
                }
            }
            entries.append(RedisStreamEntry(id: id, fields: fields))
        }
        return entries
    }
}

/// Blocking stream reads on a connection of their own, outside the pool, so a read that waits for new
/// entries never holds a pooled connection. Each call blocks at most `maximumBlock` (about a second), so
/// a consumer loop notices shutdown promptly.
public final class RedisStreamReader: Sendable {
    private let connection: RedisConnection
    public let maximumBlock: Duration

    init(connection: RedisConnection, maximumBlock: Duration) {
        self.connection = connection
        self.maximumBlock = maximumBlock
    }

    /// `XREADGROUP GROUP group consumer COUNT n BLOCK ms STREAMS stream... id...`. Returns the entries by
    /// stream; empty when the block timed out. `block` is capped at `maximumBlock`.
    public func readGroup(
        group: String,
        consumer: String,
        streams: [(stream: String, id: String)],
        count: Int,
        block: Duration
    ) async throws -> [String: [RedisStreamEntry]] {
        let blockMilliseconds = max(1, min(block, maximumBlock).wholeMilliseconds)
        var arguments: [RedisArgument] = [
            "XREADGROUP", "GROUP", RedisArgument(group), RedisArgument(consumer),
            "COUNT", RedisArgument(count), "BLOCK", RedisArgument(blockMilliseconds), "STREAMS",
        ]
        arguments += streams.map { RedisArgument($0.stream) }
        arguments += streams.map { RedisArgument($0.id) }
        let reply = try await connection.send(arguments)
        if reply.isNull { return [:] }
        guard let perStream = reply.array else { throw RedisError.unexpected(reply, expected: "an XREADGROUP reply") }
        var result: [String: [RedisStreamEntry]] = [:]
        for item in perStream {
            guard let pair = item.array, pair.count == 2, let stream = pair[0].string else {
                throw RedisError.unexpected(item, expected: "a stream and its entries")
            }
            result[stream] = try RedisClient.entries(pair[1])
        }
        return result
    }

    /// Sends any command on the reader's connection (e.g. `XREAD ... BLOCK` without a group).
    @discardableResult
    public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        try await connection.send(arguments)
    }

    /// Closes the reader's socket.
    public func close() async {
        await connection.close()
    }
}
