import ConnectionKit

/// An error from the Redis client: an error reply from the server or a client-side failure.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; extensible, so switches need a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The server answered with an error reply; ``RedisError/message`` holds it.
        public static let server = Code("server")
        /// `NOSCRIPT`: the script is not in the server's cache.
        public static let noScript = Code("noScript")
        /// `NOGROUP`: the stream or consumer group does not exist (e.g. after Redis lost its data).
        public static let noGroup = Code("noGroup")
        /// `BUSYGROUP`: the consumer group already exists.
        public static let busyGroup = Code("busyGroup")
        /// The server's memory is full (`OOM` under `noeviction`).
        public static let outOfMemory = Code("outOfMemory")
        /// The connection could not be established.
        public static let connectionFailed = Code("connectionFailed")
        /// The connection broke or timed out while a command was in flight: its outcome is unknown.
        public static let connectionLost = Code("connectionLost")
        /// No connection became free within the pool's bounded wait, or the pool is closed.
        public static let poolExhausted = Code("poolExhausted")
        /// A reply did not have the expected shape.
        public static let unexpectedReply = Code("unexpectedReply")
        /// The client's configuration is invalid (e.g. a malformed URL).
        public static let invalidConfiguration = Code("invalidConfiguration")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "RedisError.\(code): \(message)" }

    /// True when the same command may succeed if tried again later.
    public var isTransient: Bool {
        [.connectionFailed, .connectionLost, .poolExhausted, .outOfMemory].contains(code)
    }

    /// Classifies an error reply by its prefix.
    init(reply message: String) {
        let prefix = message.prefix { $0 != " " }
        let code: Code =
            switch prefix {
            case "NOSCRIPT": .noScript
            case "NOGROUP": .noGroup
            case "BUSYGROUP": .busyGroup
            case "OOM": .outOfMemory
            default: .server
            }
        self.init(code: code, message: message)
    }

    init(_ exhausted: ConnectionPoolExhausted) {
        self.init(code: .poolExhausted, message: exhausted.description)
    }

    static func unexpected(_ reply: RedisReply, expected: String) -> RedisError {
        RedisError(code: .unexpectedReply, message: "expected \(expected), got \(reply)")
    }
}
