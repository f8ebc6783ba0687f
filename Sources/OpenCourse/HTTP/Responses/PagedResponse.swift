import Foundation
import Hummingbird

/// Turns any `Page` into `{data, nextCursor}` plus a `Link: <…>; rel="next"` header that repeats
/// the request's own filters with the next cursor.
enum PagedResponse {
    static func make<Item, Output: Encodable & Sendable>(
        _ page: Page<Item>, for request: Request, _ transform: (Item) -> Output
    ) -> EditedResponse<PageRepresentation<Output>> {
        var headers = HTTPFields()
        if let link = link(page, for: request) { headers[.link] = link }
        return EditedResponse(headers: headers, response: body(page, transform))
    }

    static func body<Item, Output: Encodable & Sendable>(_ page: Page<Item>, _ transform: (Item) -> Output) -> PageRepresentation<Output> {
        PageRepresentation(data: page.items.map(transform), nextCursor: page.nextCursor?.token)
    }

    /// The `Link` header value for the next page, when there is one.
    static func link<Item>(_ page: Page<Item>, for request: Request) -> String? {
        page.nextCursor.map { "<\(nextURI(for: request, cursor: $0.token))>; rel=\"next\"" }
    }

    private static func nextURI(for request: Request, cursor: String) -> String {
        var items = QueryParameters(request.uri).items
            .compactMap { item in item.value.map { (item.name, $0) } }
            .filter { $0.0 != "cursor" }
        items.append(("cursor", cursor))
        let query = items.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
        return request.uri.path + "?" + query
    }

    private static let allowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~")
        return set
    }()

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
