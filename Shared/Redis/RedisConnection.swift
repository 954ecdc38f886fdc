import ConnectionKit
import Logging

/// One Redis connection, owned by an actor whose executor is a dedicated OS thread, so hiredis'
/// blocking calls never occupy Swift's cooperative pool. The hiredis context never leaves the actor.
public actor RedisConnection {
    private let executor: DedicatedThreadExecutor
    private let connection: HiredisConnection

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    init(configuration: RedisClient.Configuration, commandTimeout: Duration, logger: Logger, name: String) {
        self.executor = DedicatedThreadExecutor(name: name)
        self.connection = HiredisConnection(configuration: configuration, commandTimeout: commandTimeout, logger: logger)
    }

    deinit {
        executor.shutdown()
    }

    /// Sends one command. An error reply is thrown as ``RedisError``.
    @discardableResult
    public func send(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        let reply = try connection.command(arguments)
        if case .error(let message) = reply { throw RedisError(reply: message) }
        return reply
    }

    /// Sends every command before reading the replies. Error replies stay in the result as `.error`,
    /// so one failed command does not hide the others' outcomes.
    public func pipeline(_ commands: [[RedisArgument]]) throws(RedisError) -> [RedisReply] {
        try connection.pipeline(commands)
    }

    /// Closes the socket; the next command reconnects.
    public func close() {
        connection.close()
    }
}
