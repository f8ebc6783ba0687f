import Foundation
import JWTKit
import Synchronization

/// A signed access token and how long it stays valid.
public struct IssuedToken: Sendable, Equatable {
    public var accessToken: String
    public var expiresIn: Int
}

/// Claims of opencourse access tokens.
struct AccessClaims: JWTPayload {
    static let issuer = "opencourse"

    var sub: SubjectClaim
    var role: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var iss: IssuerClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard iss.value == Self.issuer else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "unexpected issuer")
        }
    }
}

/// Issues and verifies HS256 access tokens.
public struct TokenService: Sendable {
    private let keys: JWTKeyCollection
    private let verified = VerifiedTokens()
    public let lifetimeSeconds: Int
    /// The encoded headers of the tokens this service issues, `{"alg":"HS256","typ":"JWT"}` in
    /// either key order (jwt-kit's JSON encoder does not fix one), each with the dot after it.
    /// jwt-kit picks the key by `kid`, not by `alg`, so the algorithm is checked here: a token whose
    /// header is anything else (`alg: none`, another algorithm) is refused before any parsing or
    /// signature work.
    private static let headerPrefixes = [#"{"alg":"HS256","typ":"JWT"}"#, #"{"typ":"JWT","alg":"HS256"}"#].map { json in
        Base64URL.encode(json.utf8) + "."
    }

    /// `secret` must already be validated (at least 32 bytes): jwt-kit asserts on short keys.
    public init(secret: [UInt8], lifetimeSeconds: Int) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.lifetimeSeconds = lifetimeSeconds
    }

    public func issue(for user: User, now: Date = Date()) async throws -> IssuedToken {
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = AccessClaims(
            sub: SubjectClaim(value: user.id.apiString),
            role: user.role.rawValue,
            iat: IssuedAtClaim(value: issuedAt),
            exp: ExpirationClaim(value: issuedAt.addingTimeInterval(TimeInterval(lifetimeSeconds))),
            iss: IssuerClaim(value: AccessClaims.issuer)
        )
        return IssuedToken(accessToken: try await keys.sign(claims), expiresIn: lifetimeSeconds)
    }

    /// The identity a token proves; `AppError.unauthorized` for anything that is not a valid,
    /// unexpired HS256 token issued by us.
    public func verify(_ token: String) async throws -> Identity {
        guard token.utf8.count <= 4096, Self.headerPrefixes.contains(where: { token.hasPrefix($0) }) else {
            throw AppError.unauthorized("The access token is invalid.")
        }
        if let identity = verified.identity(for: token, now: Date()) { return identity }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw AppError.unauthorized("The access token has expired or was not issued by opencourse.")
        } catch {
            throw AppError.unauthorized("The access token is invalid.")
        }
        guard let userID = UUID(apiString: claims.sub.value), let role = Role(rawValue: claims.role) else {
            throw AppError.unauthorized("The access token is invalid.")
        }
        let identity = Identity(userID: userID, role: role)
        verified.remember(token, identity: identity, expiresAt: claims.exp.value)
        return identity
    }
}

/// Tokens this instance has verified, until they expire. A token's claims cannot change and
/// its signature was checked, so a repeat is answered without the JWT work: `JWTKeyCollection`
/// is an actor (a hop off the connection's event loop per request) and decodes the payload with
/// Foundation. Bounded: when full, expired entries go, and if none has, all of them.
final class VerifiedTokens: Sendable {
    private struct Entry {
        var identity: Identity
        var expiresAt: Date
    }

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func identity(for token: String, now: Date) -> Identity? {
        entries.withLock { entries in
            guard let entry = entries[token] else { return nil }
            guard now < entry.expiresAt else {
                entries[token] = nil
                return nil
            }
            return entry.identity
        }
    }

    func remember(_ token: String, identity: Identity, expiresAt: Date) {
        let now = Date()
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { now < $0.value.expiresAt }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = Entry(identity: identity, expiresAt: expiresAt)
        }
    }
}
