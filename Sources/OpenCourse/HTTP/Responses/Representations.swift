import Foundation
import Hummingbird

/// JSON shapes of the API. Ids are lower-case UUID strings; timestamps go through `APIJSON`.

struct UserRepresentation: ResponseEncodable, Equatable {
    var id: String
    var email: String
    var name: String?
    var role: String
    var createdAt: Date
    var updatedAt: Date

    init(_ user: User) {
        id = user.id.apiString
        email = user.email
        name = user.name
        role = user.role.rawValue
        createdAt = user.createdAt
        updatedAt = user.updatedAt
    }

    enum CodingKeys: String, CodingKey { case id, email, name, role, createdAt, updatedAt }

    // `name` is always present, as null when unset.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(email, forKey: .email)
        try container.encode(name, forKey: .name)
        try container.encode(role, forKey: .role)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

struct CourseRepresentation: ResponseEncodable, Equatable {
    var id: String
    var title: String
    var description: String?
    var createdBy: String
    var createdAt: Date
    var updatedAt: Date

    init(_ course: Course) {
        id = course.id.apiString
        title = course.title
        description = course.description
        createdBy = course.createdBy.apiString
        createdAt = course.createdAt
        updatedAt = course.updatedAt
    }

    enum CodingKeys: String, CodingKey { case id, title, description, createdBy, createdAt, updatedAt }

    // `description` is always present, as null when unset.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(title, forKey: .title)
        try container.encode(description, forKey: .description)
        try container.encode(createdBy, forKey: .createdBy)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

struct EnrollmentRepresentation: ResponseEncodable, Equatable {
    var id: String
    var userId: String
    var courseId: String
    var enrolledAt: Date

    init(_ enrollment: Enrollment) {
        id = enrollment.id.apiString
        userId = enrollment.userID.apiString
        courseId = enrollment.courseID.apiString
        enrolledAt = enrollment.enrolledAt
    }
}

struct EnrolledCourseRepresentation: Encodable {
    var id: String
    var courseId: String
    var enrolledAt: Date
    var course: CourseRepresentation

    init(_ item: EnrolledCourse) {
        id = item.enrollment.id.apiString
        courseId = item.enrollment.courseID.apiString
        enrolledAt = item.enrollment.enrolledAt
        course = CourseRepresentation(item.course)
    }
}

struct RosterEntryRepresentation: Encodable {
    struct Member: Encodable {
        var id: String
        var name: String?
        var email: String

        enum CodingKeys: String, CodingKey { case id, name, email }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(name, forKey: .name)
            try container.encode(email, forKey: .email)
        }
    }

    var id: String
    var userId: String
    var enrolledAt: Date
    var user: Member

    init(_ entry: RosterEntry) {
        id = entry.enrollment.id.apiString
        userId = entry.enrollment.userID.apiString
        enrolledAt = entry.enrollment.enrolledAt
        user = Member(id: entry.user.id.apiString, name: entry.user.name, email: entry.user.email)
    }
}

/// `POST /auth/login`.
struct TokenRepresentation: ResponseEncodable {
    var accessToken: String
    var tokenType = "Bearer"
    var expiresIn: Int
    var user: UserRepresentation

    init(user: User, token: IssuedToken) {
        accessToken = token.accessToken
        expiresIn = token.expiresIn
        self.user = UserRepresentation(user)
    }
}

/// A page of any list: `{data, nextCursor}`, with `nextCursor` null on the last page.
struct PageRepresentation<Item: Encodable & Sendable>: ResponseEncodable {
    var data: [Item]
    var nextCursor: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(data, forKey: .data)
        try container.encode(nextCursor, forKey: .nextCursor)
    }

    enum CodingKeys: String, CodingKey { case data, nextCursor }
}

struct StatusRepresentation: ResponseEncodable {
    var status: String
}
