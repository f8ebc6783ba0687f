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

    /// Split on the bytes `&` and `=`, which never occur inside a multi-byte UTF-8 sequence:
    /// splitting by `Character` ran grapheme breaking over the whole query, 4% of a catalog page.
    private init(query: String?) {
        items = (query ?? "").utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(Substring(parts[0])) else { return nil }
            return (name, parts.count == 2 ? Self.decode(Substring(parts[1])) : "")
        }
    }

    /// Reads the named parameters, each at most once; throws a 422 naming every bad one.
    static func read(_ request: Request, _ names: [String]) throws -> KnownQuery {
        try read(query: request.uri.query, names)
    }

    /// `query` as sent, without the `?`.
    static func read(query: String?, _ names: [String]) throws -> KnownQuery {
        let parameters = QueryParameters(query: query)
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

    /// `+` is a space and `%XX` a byte; nil for a malformed escape, as Foundation's
    /// `removingPercentEncoding` reads it, and for bytes that are not UTF-8, which Foundation
    /// sometimes repaired to U+FFFD. By hand because Foundation's `replacingOccurrences` and
    /// `removingPercentEncoding` were 8% of a cached catalog page's CPU.
    static func decode(_ text: Substring) -> String? {
        let utf8 = text.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            index = utf8.index(after: index)
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard index != utf8.endIndex, let high = utf8[index].hexDigitValue else { return nil }
                index = utf8.index(after: index)
                guard index != utf8.endIndex, let low = utf8[index].hexDigitValue else { return nil }
                index = utf8.index(after: index)
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
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
