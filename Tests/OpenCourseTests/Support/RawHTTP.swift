import Foundation
import NIOCore
import NIOPosix

/// HTTP written by hand, for what no client library would send.
enum RawHTTP {
    /// Sends raw bytes and reads until the server closes the connection.
    static func exchange(_ request: Data, port: Int) async throws -> String {
        try await connect(port: port).executeThenClose { inbound, outbound in
            // The server may answer and close before it has read everything.
            try? await outbound.write(ByteBuffer(bytes: request))
            var received = ByteBuffer()
            do {
                for try await chunk in inbound { received.writeImmutableBuffer(chunk) }
            } catch {}
            return String(buffer: received)
        }
    }

    /// A connection of its own, to write and read on as a test needs.
    static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }
}
