import Foundation

/// Position in a list ordered newest first by (timestamp, id). Opaque to clients: they get it as
/// a token from one page and send it back unchanged to continue.
public struct Cursor: Sendable, Equatable {
    public var timestamp: Date
    public var id: UUID

    private static let prefix = "v1."

    /// 1970 through 9999-12-31T23:59:59.999Z, in milliseconds: every instant this service stamps.
    /// A forged cursor beyond it would reach code that traps: PostgresNIO converts a `Date` to
    /// microseconds with `Int64(_:)`, and rounding `Int64.max` milliseconds through `Double` overflows.
    static let milliseconds: ClosedRange<Int64> = 0...253_402_300_799_999

    public var token: String {
        Self.prefix + Base64URL.encode("\(Timestamp.milliseconds(of: timestamp)).\(id.apiString)".utf8)
    }

    public init(timestamp: Date, id: UUID) {
        self.timestamp = Timestamp.normalized(timestamp)
        self.id = id
    }

    /// Parses a token this service issued; anything else is a 400.
    public init(token: String) throws {
        // Bytes, not characters: a token is ASCII, and counting characters or splitting by them
        // runs grapheme breaking, which was most of a cursor's cost.
        guard token.hasPrefix(Self.prefix), token.utf8.count <= 128 else { throw Self.invalid }
        guard let data = Base64URL.decode(token.utf8.dropFirst(Self.prefix.utf8.count)),
              let raw = String(data: data, encoding: .utf8)
        else {
            throw Self.invalid
        }
        let parts = raw.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Substring.init)
        guard parts.count == 2, let milliseconds = Int64(parts[0]), Self.milliseconds.contains(milliseconds),
              let id = UUID(apiString: parts[1])
        else { throw Self.invalid }
        self.init(timestamp: Timestamp.fromMilliseconds(milliseconds), id: id)
    }

    private static let invalid = AppError.badRequest(
        "The cursor is not one this service issued; start again without it.",
        field: FieldError(field: "cursor", message: "is not one this service issued")
    )
}

/// Which slice of a list to read: the one paging helper every list uses.
public struct PageRequest: Sendable, Equatable {
    public static let defaultLimit = 20
    public static let limitRange = 1...100

    public var limit: Int
    public var after: Cursor?

    public init(limit: Int = PageRequest.defaultLimit, after: Cursor? = nil) {
        self.limit = limit
        self.after = after
    }

    /// Reads `limit` and `cursor` query parameters; a bad limit is a field error, a bad cursor a 400.
    static func parse(limit: String?, cursor: String?, validator: inout Validator) throws -> PageRequest {
        let limit = validator.integer(limit, field: "limit", range: limitRange) ?? defaultLimit
        let after = try cursor.map { try Cursor(token: $0) }
        return PageRequest(limit: limit, after: after)
    }

    /// Repositories fetch one row more than asked so the page knows whether another follows.
    var fetchLimit: Int { limit + 1 }
}

public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: Cursor?

    /// Builds a page from up to `request.fetchLimit` rows in list order.
    init(fetched: [Item], request: PageRequest, cursor: (Item) -> Cursor) {
        if fetched.count > request.limit {
            let items = Array(fetched.prefix(request.limit))
            self.items = items
            self.nextCursor = items.last.map(cursor)
        } else {
            self.items = fetched
            self.nextCursor = nil
        }
    }

    func map<Other: Sendable>(_ transform: (Item) throws -> Other) rethrows -> Page<Other> {
        Page<Other>(items: try items.map(transform), nextCursor: nextCursor)
    }

    private init(items: [Item], nextCursor: Cursor?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}
