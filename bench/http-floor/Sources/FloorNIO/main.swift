import CapturedResponses
import NIOCore
import NIOHTTP1
import NIOPosix

/// SwiftNIO's HTTP/1 server pipeline and one synchronous handler: the response is written from
/// `channelRead`, with no task, no async sequence and no router.
final class CapturedResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Prepared: Sendable {
        let head: HTTPResponseHead
        let body: ByteBuffer

        init(_ captured: CapturedResponse) {
            var headers = HTTPHeaders(captured.headers)
            headers.add(name: "Content-Length", value: String(captured.body.count))
            if let date = captured.date { headers.add(name: "Date", value: date) }
            head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
            body = ByteBuffer(bytes: captured.body)
        }
    }

    let health: Prepared, get: Prepared, list: Prepared
    static let notFound = HTTPResponseHead(version: .http1_1, status: .notFound, headers: ["Content-Length": "0"])

    init(_ responses: (health: CapturedResponse, get: CapturedResponse, list: CapturedResponse)) {
        health = Prepared(responses.health)
        get = Prepared(responses.get)
        list = Prepared(responses.list)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let uri = request.uri
        let prepared = uri == "/health" ? health
            : uri.hasPrefix("/api/v1/courses/") ? get
            : uri.hasPrefix("/api/v1/courses") ? list : nil
        guard let prepared else {
            context.write(wrapOutboundOut(.head(Self.notFound)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        context.write(wrapOutboundOut(.head(prepared.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(prepared.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

let responses = try CapturedResponse.load()
let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(CapturedResponder(responses))
        }
    }
    .bind(host: "127.0.0.1", port: CapturedResponse.port).get()
try await channel.closeFuture.get()
