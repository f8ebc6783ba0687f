import Hummingbird

/// Per-request state: Hummingbird's core storage plus the caller proven by the access token.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` on routes that need a signed-in caller.
    public var identity: Identity?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { 1024 * 1024 }
    public var responseEncoder: APIJSON.Encoder { APIJSON.Encoder() }
    public var requestDecoder: APIJSON.Decoder { APIJSON.Decoder() }

    /// The caller; only routes behind `AuthenticationMiddleware` ask, so a nil here is a wiring bug
    /// reported as 401 rather than a crash.
    func requireIdentity() throws -> Identity {
        guard let identity else { throw AppError.unauthorized("Sign in to do this.") }
        return identity
    }
}
