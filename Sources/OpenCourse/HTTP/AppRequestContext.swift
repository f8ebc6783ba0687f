import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// Per-request state: Hummingbird's core storage, the socket peer, the client's address, and the
/// caller proven by the access token.
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection's event loop, which request handling prefers to run on.
    let eventLoop: any EventLoop
    /// Set by `RequestObservabilityMiddleware` from the peer and trusted `X-Forwarded-For`.
    public var clientAddress = "unknown"
    /// What the rate limits count this client as: its address, or its /64 for IPv6.
    var clientLimitKey: String { IPAddress.limitKey(of: clientAddress) }
    /// Set by `RequestLimitsMiddleware` from `MAX_BODY_BYTES`.
    public var maxBodyBytes = 1024 * 1024
    /// Set by `AuthenticationMiddleware` on routes that need a signed-in caller.
    public var identity: Identity? {
        didSet { facts.userID = identity?.userID }
    }
    /// Shared with the outer middleware, which cannot see changes made to inner copies of the
    /// context, so that the access log can name the user.
    let facts = RequestFacts()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.eventLoop = source.channel.eventLoop
    }

    public var maxUploadSize: Int { maxBodyBytes }
    public var responseEncoder: APIJSON.Encoder { APIJSON.Encoder() }
    public var requestDecoder: APIJSON.Decoder { APIJSON.Decoder() }

    /// The caller; only routes behind `AuthenticationMiddleware` ask, so a nil here is a wiring bug
    /// reported as 401 rather than a crash.
    func requireIdentity() throws -> Identity {
        guard let identity else { throw AppError.unauthorized("Sign in to do this.") }
        return identity
    }
}

/// What inner layers learn about a request that the access log reports.
final class RequestFacts: Sendable {
    private let storage = Mutex<UUID?>(nil)

    var userID: UUID? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
