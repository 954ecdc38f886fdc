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
        let raw = withArgv(arguments) { count, argv, lengths in
            redisCommandArgv(context, count, argv, lengths)
        }
        guard let raw else { throw lostConnection(context) }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return Self.convert(reply)
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
        let context = try ready()
        for arguments in commands {
            let status = withArgv(arguments) { count, argv, lengths in
                redisAppendCommandArgv(context, count, argv, lengths)
            }
            guard status == REDIS_OK else { throw lostConnection(context) }
        }
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

/// Passes hiredis' argc/argv/argvlen for binary-safe arguments.
private func withArgv<R>(
    _ arguments: [RedisArgument],
    _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
) -> R {
    let total = arguments.reduce(0) { $0 + $1.bytes.count }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
    defer { buffer.deallocate() }
    var pointers: [UnsafePointer<CChar>?] = []
    var lengths: [Int] = []
    pointers.reserveCapacity(arguments.count)
    lengths.reserveCapacity(arguments.count)
    var offset = 0
    for argument in arguments {
        let destination = buffer.baseAddress.map { $0 + offset }
        argument.bytes.withUnsafeBytes { source in
            if let base = source.baseAddress, let destination { destination.copyMemory(from: base, byteCount: source.count) }
        }
        pointers.append(destination.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) })
        lengths.append(argument.bytes.count)
        offset += argument.bytes.count
    }
    return pointers.withUnsafeMutableBufferPointer { argv in
        lengths.withUnsafeBufferPointer { argvlen in
            // Both buffers are non-empty whenever a command is sent; an empty command is refused by Redis.
            guard let argvBase = argv.baseAddress, let lengthBase = argvlen.baseAddress else {
                var emptyPointer: UnsafePointer<CChar>? = nil
                var emptyLength = 0
                return body(0, &emptyPointer, &emptyLength)
            }
            return body(Int32(arguments.count), argvBase, lengthBase)
        }
    }
}

extension timeval {
    init(_ duration: Duration) {
        let milliseconds = max(1, duration.wholeMilliseconds)
        self.init(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
    }
}
