import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Public catalog responses: served from the catalog cache when it is on, always with a strong
/// `ETag`, answered with 304 when `If-None-Match` matches, and marked cacheable for a CDN.
struct CatalogResponses: Sendable {
    let cache: CatalogCache?
    /// `public, max-age=…, stale-while-revalidate=…`
    let cacheControl: String

    init(cache: CatalogCache?, maxAgeSeconds: Int, staleWhileRevalidateSeconds: Int) {
        self.cache = cache
        self.cacheControl = "public, max-age=\(maxAgeSeconds), stale-while-revalidate=\(staleWhileRevalidateSeconds)"
    }

    func respond(
        to request: Request, key: CatalogCache.Key,
        load: @escaping @Sendable () async throws -> CachedRepresentation
    ) async throws -> Response {
        let representation: CachedRepresentation
        if let cache {
            representation = try await cache.value(for: key, load: load)
        } else {
            representation = try await load()
        }
        return Self.response(to: request, representation: representation, cacheControl: cacheControl)
    }

    /// A public representation with its validator: 304 when `If-None-Match` matches, else the body.
    static func response(to request: Request, representation: CachedRepresentation, cacheControl: String) -> Response {
        let answer = Self.answer(ifNoneMatch: request.headers[values: .ifNoneMatch], representation: representation, cacheControl: cacheControl)
        guard let body = answer.body else { return Response(status: answer.status, headers: answer.headers) }
        return Response(status: answer.status, headers: answer.headers, body: .init(byteBuffer: body))
    }

    /// The status, fields and body (none for 304) of the response above.
    static func answer(
        ifNoneMatch: [String], representation: CachedRepresentation, cacheControl: String
    ) -> (status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer?) {
        // Appended (none is there yet), with room for what the middleware adds.
        var headers = HTTPFields()
        headers.reserveCapacity(16)
        headers.append(HTTPField(name: .eTag, value: representation.etag))
        headers.append(HTTPField(name: .cacheControl, value: cacheControl))
        if let link = representation.link { headers.append(HTTPField(name: .link, value: link)) }
        if Self.matches(ifNoneMatch, representation.etag) {
            return (.notModified, headers, nil)
        }
        headers.append(APIJSON.contentTypeField)
        return (.ok, headers, representation.body)
    }

    /// Encodes a body once, for the cache.
    static func representation(of value: some Encodable, link: String? = nil) throws -> CachedRepresentation {
        CachedRepresentation(body: ByteBuffer(bytes: try APIJSON.encoder.encode(value)), link: link)
    }

    /// `If-None-Match` uses the weak comparison (RFC 9110 13.1.2): `W/` prefixes are ignored.
    static func matches(_ headerValues: [String], _ etag: String) -> Bool {
        for value in headerValues {
            for candidate in value.split(separator: ",") {
                var tag = candidate.trimmingHTTPWhitespace()
                if tag == "*" { return true }
                if tag.hasPrefix("W/") { tag.removeFirst(2) }
                if tag == etag { return true }
            }
        }
        return false
    }
}
