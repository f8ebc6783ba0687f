import NIOCore
import NIOHTTP1

/// Between NIO's HTTP/1 parser and Hummingbird's conversion to Swift HTTP Types: answers what the
/// responder can and passes the rest on. Sitting before the conversion saves it for every answer
/// given here, but Hummingbird's connection-state handler then sees only the requests passed on,
/// so this handler keeps the idle timeout for both kinds (Hummingbird's is off when it is here).
/// A graceful shutdown needs nothing of it: an answered request has no body, so NIO's parser
/// delivers its head and end together and no answer is ever half-done between two events.
final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: FastPathResponder
    /// Requests passed on whose response has not ended. Hummingbird answers pipelined requests
    /// in order, so answering here while one is pending would reorder the responses.
    private var passedOn = 0
    /// A passed-on request asked Hummingbird to close the connection after it, or the server is
    /// shutting down: Hummingbird answers the rest.
    private var closing = false
    /// The request being read was answered here: its end is not passed on.
    private var answered = false
    private var needsFlush = false
    /// Something was passed on since the last read-complete event went on.
    private var passedOnSinceReadComplete = false
    private var idle: IdleTimer?

    init(responder: FastPathResponder, idleTimeout: TimeAmount?) {
        self.responder = responder
        self.idle = idleTimeout.map { IdleTimer(timeout: $0) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { scheduleIdleCheck(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleIdleCheck(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        idle?.read(part)
        switch part {
        case .head(let request):
            // A client that does not read its answers gets Hummingbird's back-pressure.
            if passedOn == 0, !closing, context.channel.isWritable,
               let answer = responder.answer(request, peer: context.channel.remoteAddress) {
                // Written before the request's end arrives (it follows at once: an answered
                // request has no body). NIO's decoder has told its encoder this request's method
                // before handing on the head, so the encoder pairs the two as usual.
                context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
                if let body = answer.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
                context.write(wrapOutboundOut(.end(nil)), promise: nil)
                needsFlush = true
                answered = true
                return
            }
            passedOn += 1
            if FastPathResponder.Fields(request.headers).closesConnection { closing = true }
            passOn(context, data)
        case .body:
            // Answered requests have no body: the responder takes none with one.
            if !answered { passOn(context, data) }
        case .end:
            if answered {
                answered = false
            } else {
                passOn(context, data)
            }
        }
    }

    private func passOn(_ context: ChannelHandlerContext, _ data: NIOAny) {
        passedOnSinceReadComplete = true
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush for all the answers of one read, as pipelined requests arrive together.
        flushIfNeeded(context)
        // The handlers behind use it only to hand on what they were passed (NIOAsyncChannel
        // delivers its buffered reads): after a read answered here alone it was 3% of the time.
        if passedOnSinceReadComplete {
            passedOnSinceReadComplete = false
            context.fireChannelReadComplete()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The HTTP decoder may still deliver a request when the input closes, outside a read cycle.
        flushIfNeeded(context)
        // Hummingbird's state handler closes the connection once it has nothing in hand.
        if event is ChannelShouldQuiesceEvent { closing = true }
        context.fireUserInboundEventTriggered(event)
    }

    /// A parse error after answered requests (in the same read) closes the connection: they go first.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        flushIfNeeded(context)
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Never below 0: Hummingbird also ends the 400 it sends for a request NIO could not
        // parse, which never came through here (the connection closes after it).
        if case .end = unwrapOutboundIn(data) {
            passedOn = max(0, passedOn - 1)
            if passedOn == 0 {
                idle?.touch()
                scheduleIdleCheck(context)
            }
        }
        context.write(data, promise: promise)
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext) {
        guard let deadline = idle?.deadline, idle?.scheduled == nil else { return }
        idle?.scheduled = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) {
            self.idle?.scheduled = nil
            self.idleCheck(context)
        }
    }

    /// Hummingbird's rule: a connection is idle when nothing was read or answered for the
    /// timeout; one whose request is being worked on is not (the check comes back after it).
    private func idleCheck(_ context: ChannelHandlerContext) {
        guard let idle, context.channel.isActive else { return }
        if !idle.reading, passedOn > 0 { return }
        if NIODeadline.now() >= idle.deadline {
            context.close(promise: nil)
        } else {
            scheduleIdleCheck(context)
        }
    }
}

/// The idle-timeout state of one connection.
private struct IdleTimer {
    let timeout: TimeAmount
    var lastActive = NIODeadline.now()
    /// A request head has been read but not its end.
    var reading = false
    var scheduled: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    var deadline: NIODeadline { lastActive + timeout }

    mutating func read(_ part: HTTPServerRequestPart) {
        lastActive = .now()
        switch part {
        case .head: reading = true
        case .body: break
        case .end: reading = false
        }
    }

    mutating func touch() {
        lastActive = .now()
    }

    mutating func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }
}
