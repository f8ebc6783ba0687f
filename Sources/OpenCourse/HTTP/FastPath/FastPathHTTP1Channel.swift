import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 channel with a `FastPathHandler` just after NIO's HTTP/1 parser. The
/// handler keeps the idle timeout, since Hummingbird's connection-state handler behind it does
/// not see the requests it answers.
struct FastPathHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel
    let responder: FastPathResponder
    let idleTimeout: TimeAmount?

    init(responder: @escaping HTTPChannelHandler.Responder, configuration: HTTP1Channel.Configuration, fastPath: FastPathResponder) {
        var configuration = configuration
        idleTimeout = configuration.idleTimeout
        configuration.idleTimeout = nil
        base = HTTP1Channel(responder: responder, configuration: configuration)
        self.responder = fastPath
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (responder, idleTimeout) = (self.responder, self.idleTimeout)
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            // Should a Hummingbird release set its pipeline up differently, no connection is
            // served rather than connections without an idle timeout (the tests fail first).
            guard let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) else {
                logger.error("Hummingbird's HTTP/1 pipeline has no HTTP1ToHTTPServerCodec: the HTTP fast path cannot be placed")
                throw FastPathSetupError.codecNotFound
            }
            try pipeline.addHandler(FastPathHandler(responder: responder, idleTimeout: idleTimeout), position: .before(codec))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

enum FastPathSetupError: Error {
    case codecNotFound
}

extension HTTPServerBuilder {
    /// `.http1(configuration:)`, with the fast path when there is a responder.
    static func http1(configuration: HTTP1Channel.Configuration, fastPath: FastPathResponder?) -> HTTPServerBuilder {
        guard let fastPath else { return .http1(configuration: configuration) }
        return HTTPServerBuilder { responder in
            FastPathHTTP1Channel(responder: responder, configuration: configuration, fastPath: fastPath)
        }
    }
}
