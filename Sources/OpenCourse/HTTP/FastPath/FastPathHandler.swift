import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Between Hummingbird's connection-state handler and its request loop: answers what the
/// responder can and passes the rest on. The state handler sees both kinds of request, so idle
/// timeouts and graceful shutdown count them alike.
final class FastPathHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let responder: FastPathResponder
    /// Requests passed on whose response has not ended. Hummingbird answers pipelined requests
    /// in order, so answering here while one is pending would reorder the responses.
    private var passedOn = 0
    /// A passed-on request asked Hummingbird to close the connection after it.
    private var closing = false
    /// The answer to the request being read, written once its end arrives.
    private var pending: FastPathResponder.Answer?
    private var needsFlush = false

    init(responder: FastPathResponder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            // A client that does not read its answers gets Hummingbird's back-pressure.
            if passedOn == 0, !closing, context.channel.isWritable,
               let answer = responder.answer(request, peer: context.channel.remoteAddress) {
                pending = answer
                return
            }
            passedOn += 1
            if FastPathResponder.closesConnection(request) { closing = true }
            context.fireChannelRead(data)
        case .body:
            // Answered requests have no body: the responder takes none with one.
            if pending == nil { context.fireChannelRead(data) }
        case .end:
            guard let answer = pending else {
                context.fireChannelRead(data)
                return
            }
            pending = nil
            context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
            if let body = answer.body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
            needsFlush = true
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush for all the answers of one read, as pipelined requests arrive together.
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    /// The HTTP decoder may still deliver a request when the input closes, outside a read cycle.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        flushIfNeeded(context)
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Never below 0: Hummingbird also ends the 400 it sends for a request NIO could not
        // parse, which never came through here (the connection closes after it).
        if case .end = unwrapOutboundIn(data) { passedOn = max(0, passedOn - 1) }
        context.write(data, promise: promise)
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }
}
