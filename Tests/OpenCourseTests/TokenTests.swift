import Foundation
import HTTPTypes
import Crypto
import Testing
@testable import OpenCourse

@Suite("Access tokens")
struct TokenTests {
    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Signs arbitrary claims with the test secret, to forge expired or foreign tokens. The header
    /// is byte for byte the one the service issues, so only the claims or the key differ.
    private static func sign(_ claims: [String: any Sendable], secret: [UInt8] = testSecret) throws -> String {
        let header = base64URL(Data(#"{"typ":"JWT","alg":"HS256"}"#.utf8))
        let payload = base64URL(try JSONSerialization.data(withJSONObject: claims))
        let input = Data("\(header).\(payload)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret))
        return "\(header).\(payload).\(base64URL(Data(mac)))"
    }

    @Test(arguments: TestDatabase.allCases)
    func everyKindOfBadTokenIsUnauthorized(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, id) = try await client.register()
            let now = Int(Date().timeIntervalSince1970)
            let payload = token.split(separator: ".")[1]
            let algNone = Self.base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + ".\(payload)."
            // Another first character of the signature: six whole bits of the MAC differ. (Changing the
            // last characters could leave it equal: the 43rd character carries two unused bits.)
            let parts = token.split(separator: ".")
            let badSignature = "\(parts[0]).\(parts[1]).\(parts[2].first == "A" ? "B" : "A")\(parts[2].dropFirst())"
            let hs512 = Self.base64URL(Data(#"{"typ":"JWT","alg":"HS512"}"#.utf8)) + ".\(payload).\(token.split(separator: ".")[2])"
            let cases: [(String, HTTPFields)] = [
                ("missing", [:]),
                ("not bearer", [.authorization: "Basic dXNlcjpwYXNz"]),
                ("malformed", [.authorization: "Bearer not.a.jwt"]),
                ("bad signature", [.authorization: "Bearer \(badSignature)"]),
                ("alg none", [.authorization: "Bearer \(algNone)"]),
                ("other algorithm", [.authorization: "Bearer \(hs512)"]),
                ("expired", [.authorization: "Bearer \(try Self.sign(["sub": id, "role": "student", "iat": now - 100, "exp": now - 10, "iss": "opencourse"]))"]),
                ("wrong issuer", [.authorization: "Bearer \(try Self.sign(["sub": id, "role": "student", "iat": now, "exp": now + 100, "iss": "someone-else"]))"]),
                ("other key", [.authorization: "Bearer \(try Self.sign(["sub": id, "role": "student", "iat": now, "exp": now + 100, "iss": "opencourse"], secret: Array(repeating: 7, count: 32)))"]),
            ]
            for (name, headers) in cases {
                let response = try await client.call(.get, "/api/v1/users/me", headers: headers)
                #expect(response.status == .unauthorized, "\(name)")
                #expect(response.headers[.wwwAuthenticate] == "Bearer", "\(name)")
                #expect(response.isProblem, "\(name)")
            }
            // The same claims, validly signed, are accepted: the cases above fail for the stated reason.
            let valid = try Self.sign(["sub": id, "role": "student", "iat": now, "exp": now + 100, "iss": "opencourse"])
            #expect(try await client.call(.get, "/api/v1/users/me", token: valid).status == .ok)
            #expect(try await client.call(.get, "/api/v1/users/me", headers: [.authorization: "bearer   \(valid)"]).status == .ok)
        }
    }

    /// Verified tokens are remembered, but only the exact token, and only until it expires.
    @Test func aRememberedTokenStillExpiresAndOnlyItselfIsRemembered() async throws {
        let service = await TokenService(secret: testSecret, lifetimeSeconds: 60)
        let user = User(id: UUID(), email: "a@example.com", passwordHash: "x", name: nil, role: .student, createdAt: Date(), updatedAt: Date())
        // Issued 57 s before the current whole second with a 60 s lifetime: expires 2 to 3 s from now.
        let second = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let token = try await service.issue(for: user, now: second.addingTimeInterval(-57)).accessToken
        #expect(try await service.verify(token) == Identity(userID: user.id, role: .student))
        #expect(try await service.verify(token) == Identity(userID: user.id, role: .student))

        var tampered = Array(token.utf8)
        tampered[tampered.count - 2] = tampered[tampered.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        await #expect(throws: AppError.self) { try await service.verify(String(decoding: tampered, as: UTF8.self)) }

        try await Task.sleep(until: .now + .seconds(second.addingTimeInterval(3.1).timeIntervalSinceNow), clock: .continuous)
        await #expect(throws: AppError.self) { try await service.verify(token) }
    }

    @Test func issuedTokensCarryTheDocumentedClaims() async throws {
        let service = await TokenService(secret: testSecret, lifetimeSeconds: 120)
        let now = Date()
        let user = User(id: UUID(), email: "a@example.com", passwordHash: "x", name: nil, role: .instructor, createdAt: now, updatedAt: now)
        let token = try await service.issue(for: user, now: now)
        #expect(token.expiresIn == 120)
        let payloadPart = String(token.accessToken.split(separator: ".")[1])
        var base64 = payloadPart.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        let data = try #require(Data(base64Encoded: base64))
        let claims = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(claims["sub"] as? String == user.id.uuidString.lowercased())
        #expect(claims["role"] as? String == "instructor")
        #expect(claims["iss"] as? String == "opencourse")
        let iat = try #require(claims["iat"] as? Double)
        let exp = try #require(claims["exp"] as? Double)
        #expect(exp - iat == 120)
        let identity = try await service.verify(token.accessToken)
        #expect(identity == Identity(userID: user.id, role: .instructor))
    }
}
