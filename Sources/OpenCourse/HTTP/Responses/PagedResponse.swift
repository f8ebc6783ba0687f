import Foundation
import Hummingbird

/// Turns any `Page` into `{data, nextCursor}` plus a `Link: <…>; rel="next"` header that repeats
/// the request's known filters with the next cursor.
enum PagedResponse {
    static func make<Item, Output: Encodable & Sendable>(
        _ page: Page<Item>, for request: Request, query: KnownQuery, _ transform: (Item) -> Output
    ) -> EditedResponse<PageRepresentation<Output>> {
        var headers = HTTPFields()
        if let link = link(page, path: request.uri.path, query: query) { headers[.link] = link }
        return EditedResponse(headers: headers, response: body(page, transform))
    }

    static func body<Item, Output: Encodable & Sendable>(_ page: Page<Item>, _ transform: (Item) -> Output) -> PageRepresentation<Output> {
        PageRepresentation(data: page.items.map(transform), nextCursor: page.nextCursor?.token)
    }

    /// The `Link` header value for the next page, when there is one.
    static func link<Item>(_ page: Page<Item>, path: String, query: KnownQuery) -> String? {
        page.nextCursor.map { cursor in
            let items = query.filters + [("cursor", cursor.token)]
            return "<\(path)?\(items.map { "\(escape($0.name))=\(escape($0.value))" }.joined(separator: "&"))>; rel=\"next\""
        }
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlUnreserved) ?? text
    }
}
