import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A response with its body parsed as JSON where possible.
struct APIResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Data

    var json: [String: any Sendable]? {
        (try? JSONSerialization.jsonObject(with: body)) as? [String: any Sendable]
    }

    func string(_ key: String) -> String? { json?[key] as? String }
    func object(_ key: String) -> [String: any Sendable]? { json?[key] as? [String: any Sendable] }
    var items: [[String: any Sendable]] { (json?["data"] as? [[String: any Sendable]]) ?? [] }
    var nextCursor: String? { json?["nextCursor"] as? String }

    /// The field names of a 422 problem's `errors` list.
    var errorFields: Set<String> {
        Set(((json?["errors"] as? [[String: any Sendable]]) ?? []).compactMap { $0["field"] as? String })
    }

    var isProblem: Bool {
        headers[.contentType]?.hasPrefix("application/problem+json") == true
            && (json?["status"] as? Int) == Int(status.code) && json?["title"] is String
    }
}

extension TestClientProtocol {
    func call(
        _ method: HTTPRequest.Method, _ path: String,
        json: [String: any Sendable]? = nil, raw: Data? = nil, token: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> APIResponse {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
            headers[.contentType] = "application/json"
        } else if let raw {
            body = ByteBuffer(bytes: raw)
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        }
        return try await execute(uri: path, method: method, headers: headers, body: body) { response in
            APIResponse(status: response.status, headers: response.headers, body: Data(buffer: response.body))
        }
    }

    /// Registers an account and returns its token and id.
    @discardableResult
    func register(
        _ email: String = "user-\(UUID().uuidString.prefix(8))@example.com",
        password: String = "password123", role: String = "student", name: String? = nil
    ) async throws -> (token: String, id: String) {
        var body: [String: any Sendable] = ["email": email, "password": password, "role": role]
        if let name { body["name"] = name }
        let response = try await call(.post, "/api/v1/auth/register", json: body)
        try #require(response.status == .created, "register failed: \(String(decoding: response.body, as: UTF8.self))")
        let token = try #require(response.string("accessToken"))
        let id = try #require(response.object("user")?["id"] as? String)
        return (token, id)
    }

    func createCourse(token: String, title: String = "Course \(UUID().uuidString.prefix(6))", description: String? = nil) async throws -> String {
        var body: [String: any Sendable] = ["title": title]
        if let description { body["description"] = description }
        let response = try await call(.post, "/api/v1/courses", json: body, token: token)
        try #require(response.status == .created, "create failed: \(String(decoding: response.body, as: UTF8.self))")
        return try #require(response.string("id"))
    }
}
