import Foundation
import Hummingbird

/// Turns any `Page` into `{data, nextCursor}` plus a `Link: <…>; rel="next"` header that repeats
/// the request's own filters with the next cursor.
enum PagedResponse {
    static func make<Item, Output: Encodable & Sendable>(
        _ page: Page<Item>, for request: Request, _ transform: (Item) -> Output
    ) -> EditedResponse<PageRepresentation<Output>> {
        let body = PageRepresentation(data: page.items.map(transform), nextCursor: page.nextCursor?.token)
        var headers = HTTPFields()
        if let next = page.nextCursor?.token {
            headers[.link] = "<\(nextURI(for: request, cursor: next))>; rel=\"next\""
        }
        return EditedResponse(headers: headers, response: body)
    }

    private static func nextURI(for request: Request, cursor: String) -> String {
        var items = request.uri.queryParameters
            .filter { $0.key != "cursor" }
            .map { (String($0.key), String($0.value)) }
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
