/// Request bodies as clients send them. Decoding never rejects a single field, so the services'
/// validation can name every bad field at once; unknown fields are ignored.

public struct RegisterInput: Decodable, Sendable {
    var email: FieldInput<String> = .absent
    var password: FieldInput<String> = .absent
    var name: FieldInput<String> = .absent
    var role: FieldInput<String> = .absent

    enum CodingKeys: String, CodingKey { case email, password, name, role }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        email = container.field(.email)
        password = container.field(.password)
        name = container.field(.name)
        role = container.field(.role)
    }

    init() {}
}

public struct LoginInput: Decodable, Sendable {
    var email: FieldInput<String> = .absent
    var password: FieldInput<String> = .absent

    enum CodingKeys: String, CodingKey { case email, password }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        email = container.field(.email)
        password = container.field(.password)
    }

    init() {}
}

public struct ProfileUpdateInput: Decodable, Sendable {
    var name: FieldInput<String> = .absent
    var email: FieldInput<String> = .absent
    var password: FieldInput<String> = .absent
    var currentPassword: FieldInput<String> = .absent

    enum CodingKeys: String, CodingKey { case name, email, password, currentPassword }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = container.field(.name)
        email = container.field(.email)
        password = container.field(.password)
        currentPassword = container.field(.currentPassword)
    }

    init() {}
}

/// Body of course creation and of PUT/PATCH; for updates absent fields are kept.
public struct CourseInput: Decodable, Sendable {
    var title: FieldInput<String> = .absent
    var description: FieldInput<String> = .absent

    enum CodingKeys: String, CodingKey { case title, description }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        title = container.field(.title)
        description = container.field(.description)
    }

    init() {}
}

/// Query parameters of a list, as text.
public struct ListQuery: Sendable {
    public var limit: String?
    public var cursor: String?

    public init(limit: String? = nil, cursor: String? = nil) {
        self.limit = limit
        self.cursor = cursor
    }
}

/// Query parameters of the catalog, as text.
public struct CatalogQuery: Sendable {
    public var page: ListQuery
    public var q: String?
    public var createdBy: String?

    public init(page: ListQuery = ListQuery(), q: String? = nil, createdBy: String? = nil) {
        self.page = page
        self.q = q
        self.createdBy = createdBy
    }
}
