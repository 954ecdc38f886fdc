internal import CHiredis
import ConnectionKit
import Foundation
import Logging
import SharedModel

/// The blocking hiredis connection. Not `Sendable`: only its owning actor touches it, on that actor's
/// dedicated thread. It reconnects on the next use after the server went away; a command in flight when
/// the connection breaks fails with `.connectionLost`.
final class HiredisConnection {
    private var context: UnsafeMutablePointer<redisContext>?
    private let configuration: RedisClient.Configuration
    /// How long one command may take before the socket times out (a blocking read needs more).
    private let commandTimeout: Duration
    private let logger: Logger
    private var connectedOnce = false
    /// The commands of the round trip being sent, in Redis's wire format; kept between round trips
    /// so that a batch is encoded without allocating.
    private var outgoing: [UInt8] = []
    /// The largest encoding buffer kept between round trips (a larger one, from a big batch, is freed).
    private static let retainedBufferSize = 1 << 20

    init(configuration: RedisClient.Configuration, commandTimeout: Duration, logger: Logger) {
        self.configuration = configuration
        self.commandTimeout = commandTimeout
        self.logger = logger
    }

    deinit {
        if let context { redisFree(context) }
    }

    func close() {
        if let context { redisFree(context) }
        context = nil
    }

    private func ready() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context {
            if context.pointee.err == 0 && !socketIsStale(context.pointee.fd) {
                return context
            }
            logger.notice("redis connection lost; reconnecting")
            close()
        }
        let context = try connect()
        self.context = context
        return context
    }

    private func connect() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeval(configuration.connectTimeout)) else {
            throw RedisError(code: .connectionFailed, message: "hiredis could not allocate a context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(code: .connectionFailed, message: "cannot connect to redis at \(configuration.host):\(configuration.port): \(message)")
        }
        _ = redisSetTimeout(context, timeval(commandTimeout))
        self.context = context
        do {
            if let password = configuration.password {
                var arguments: [RedisArgument] = ["AUTH"]
                if let user = configuration.user { arguments.append(RedisArgument(user)) }
                arguments.append(RedisArgument(password))
                try checkedReply(try roundTrip(context, arguments))
            }
            if configuration.database != 0 {
                try checkedReply(try roundTrip(context, ["SELECT", RedisArgument(configuration.database)]))
            }
        } catch {
            close()
            throw RedisError(code: .connectionFailed, message: "redis handshake failed: \(error.message)")
        }
        if connectedOnce { logger.info("redis connection re-established") }
        connectedOnce = true
        return context
    }

    private func checkedReply(_ reply: RedisReply) throws(RedisError) {
        if case .error(let message) = reply { throw RedisError(reply: message) }
    }

    /// An idle RESP2 connection has nothing to read unless the server closed it.
    private func socketIsStale(_ socket: Int32) -> Bool {
        guard socket >= 0 else { return true }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    /// Sends one command and waits for its reply. Error replies come back as `.error`.
    func command(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        let context = try ready()
        return try roundTrip(context, arguments)
    }

    private func roundTrip(_ context: UnsafeMutablePointer<redisContext>, _ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        var replies: [RedisReply] = []
        try send([arguments], on: context, replies: &replies)
        guard let reply = replies.first else { throw lostConnection(context) }
        return reply
    }

    /// Sends every command before reading any reply (one round trip for the batch).
    func pipeline(_ commands: [[RedisArgument]]) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        try exchange(commands, into: &replies)
        return replies
    }

    /// Sends every command before reading any reply, appending each reply to `replies` as it is read,
    /// so when the connection breaks midway the replies already read are kept.
    func exchange(_ commands: [[RedisArgument]], into replies: inout [RedisReply]) throws(RedisError) {
        try send(commands, on: try ready(), replies: &replies)
    }

    /// Encodes `commands` into one buffer, hands it to hiredis with one call
    /// (`redisAppendFormattedCommand` takes any number of whole commands), and reads one reply per
    /// command. hiredis' own `redisAppendCommandArgv` wanted an argv and a length array per command,
    /// and copied each argument twice: 1.4% of the booking service's CPU under the holds pair.
    private func send(
        _ commands: [[RedisArgument]], on context: UnsafeMutablePointer<redisContext>, replies: inout [RedisReply]
    )
        throws(RedisError)
    {
        outgoing.removeAll(keepingCapacity: outgoing.capacity <= Self.retainedBufferSize)
        for index in commands.indices { RESP.encode(commands[index], into: &outgoing) }
        let status = outgoing.withUnsafeBytes { bytes in
            redisAppendFormattedCommand(context, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw lostConnection(context) }
        replies.reserveCapacity(replies.count + commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw lostConnection(context) }
            replies.append(Self.convert(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
    }

    private func lostConnection(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let message = Self.errorText(context)
        close()
        return RedisError(code: .connectionLost, message: message.isEmpty ? "connection lost" : message)
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(value.str, value.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(value.str, value.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(value.str, value.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) {
                if let element = value.element?[index] {
                    elements.append(convert(element))
                } else {
                    elements.append(.null)
                }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }
}

extension HiredisConnection: PipelinedConnection {
    static func closedError() -> any Error {
        RedisError(code: .poolExhausted, message: "the redis client is closed")
    }

    static func overloadedError(limit: Int) -> any Error {
        RedisError(code: .poolExhausted, message: "redis connection overloaded: \(limit) commands already wait for it")
    }

    static func lostError() -> any Error {
        RedisError(code: .connectionLost, message: "the connection ended before the reply")
    }
}

/// Redis's wire format for commands (RESP2): an array of bulk strings, binary-safe.
enum RESP {
    /// Appends `arguments` as one command: `*<count>\r\n` then `$<length>\r\n<bytes>\r\n` for each.
    /// A command has at least one argument (its name); Redis skips an empty array without a reply.
    static func encode(_ arguments: [RedisArgument], into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendLine(arguments.count, to: &buffer)
        // By index: a `for` loop over the array retained and released every argument (on the lane's
        // thread, arrays the callers' threads made).
        for index in arguments.indices {
            buffer.append(UInt8(ascii: "$"))
            appendLine(arguments[index].bytes.count, to: &buffer)
            buffer.append(contentsOf: arguments[index].bytes)
            buffer.append(UInt8(ascii: "\r"))
            buffer.append(UInt8(ascii: "\n"))
        }
    }

    /// `value`'s decimal digits (it is a count, never negative), then CRLF.
    private static func appendLine(_ value: Int, to buffer: inout [UInt8]) {
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        repeat {
            buffer.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        } while divisor > 0
        buffer.append(UInt8(ascii: "\r"))
        buffer.append(UInt8(ascii: "\n"))
    }
}

extension timeval {
    init(_ duration: Duration) {
        let milliseconds = max(1, duration.wholeMilliseconds)
        self.init(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
    }
}
