import Foundation
import Hummingbird
import HummingbirdCore

/// The query string, read strictly: a parameter the API knows may appear once, and its value must
/// be well-formed percent-encoded UTF-8 (`+` is a space, as browsers send forms). Hummingbird's
/// own reading keeps the first of repeated parameters and the raw text of undecodable ones, which
/// would let `?limit=5&limit=500` or `?q=%ff` through unnoticed. Unknown parameters are ignored,
/// like unknown body fields.
struct QueryParameters: Sendable {
    /// In order of appearance; a nil value could not be decoded.
    private let items: [(name: String, value: String?)]

    private init(_ uri: URI) {
        items = (uri.query ?? "").split(separator: "&", omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]) else { return nil }
            return (name, parts.count == 2 ? Self.decode(parts[1]) : "")
        }
    }

    /// Reads the named parameters, each at most once; throws a 422 naming every bad one.
    static func read(_ request: Request, _ names: [String]) throws -> KnownQuery {
        let parameters = QueryParameters(request.uri)
        var validator = Validator()
        var values: [String: String] = [:]
        for name in names {
            let found = parameters.items.filter { $0.name == name }
            guard let first = found.first else { continue }
            if found.count > 1 {
                validator.fail(name, "must be given at most once")
            } else if let value = first.value {
                values[name] = value
            } else {
                validator.fail(name, "must be percent-encoded UTF-8")
            }
        }
        try validator.check()
        return KnownQuery(names: names, values: values)
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

/// The parameters a route knows, as sent and decoded.
struct KnownQuery: Sendable {
    let names: [String]
    let values: [String: String]

    subscript(name: String) -> String? { values[name] }

    /// The given ones but the cursor, in the route's order: what a next-page link repeats, so
    /// that the link depends on nothing else a client sent (a cached page serves many clients).
    var filters: [(name: String, value: String)] {
        names.filter { $0 != "cursor" }.compactMap { name in values[name].map { (name, $0) } }
    }
}

extension CharacterSet {
    /// RFC 3986's unreserved characters, ASCII only (`.alphanumerics` would let `é` through raw):
    /// what a query value may hold unencoded in a link this service writes.
    static let urlUnreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
