import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// Hummingbird's HTTP/1 channel with a `FastPathHandler` just in front of its request loop.
struct FastPathHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel
    let responder: FastPathResponder

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let responder = self.responder
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            // Behind the state handler, which must count these requests too (idle timeout,
            // graceful shutdown). Should a Hummingbird release set its pipeline up differently,
            // Hummingbird serves everything rather than no connection being set up at all.
            guard let state = try? pipeline.handler(type: HTTPConnectionStateHandler.self) else {
                if !Self.warned.exchange(true, ordering: .relaxed) {
                    logger.error("the HTTP fast path is off: Hummingbird's connection-state handler was not found")
                }
                return value
            }
            try pipeline.addHandler(FastPathHandler(responder: responder), position: .after(state))
            return value
        }
    }

    private static let warned = Atomic<Bool>(false)

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// `.http1(configuration:)`, with the fast path when there is a responder.
    static func http1(configuration: HTTP1Channel.Configuration, fastPath: FastPathResponder?) -> HTTPServerBuilder {
        guard let fastPath else { return .http1(configuration: configuration) }
        return HTTPServerBuilder { responder in
            FastPathHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration), responder: fastPath)
        }
    }
}
