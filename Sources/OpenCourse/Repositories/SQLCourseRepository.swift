import Foundation
import SQLKit

/// Courses in PostgreSQL or SQLite: the SQL below is portable between both dialects.
public struct SQLCourseRepository: CourseRepository {
    let database: any DatabaseBackend

    public init(database: any DatabaseBackend) {
        self.database = database
    }

    static let columns = "id, title, description, created_by, created_at, updated_at"

    enum InsertCourse: BatchableStatement {
        static let sql = """
            INSERT INTO courses (id, title, description, created_by, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            """
        static let batchSQL = """
            INSERT INTO courses (id, title, description, created_by, created_at, updated_at)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[], $6::timestamptz[])
            """
        static let keyColumn = "id"
    }

    enum CourseByID: BatchableStatement {
        static let sql = "SELECT \(SQLCourseRepository.columns) FROM courses WHERE id = $1"
        static let batchSQL = "SELECT \(SQLCourseRepository.columns) FROM courses WHERE id = ANY($1::uuid[])"
        static let keyColumn = "id"
    }

    public func create(_ course: Course) async throws -> Course {
        _ = try await database.mapFailures {
            try await database.runBatched(InsertCourse.self, [
                .uuid(course.id), .text(course.title), .text(course.description),
                .uuid(course.createdBy), .timestamp(course.createdAt), .timestamp(course.updatedAt),
            ])
        }
        return course
    }

    public func find(id: UUID) async throws -> Course? {
        try await database.runBatched(CourseByID.self, [.uuid(id)]).first.map { try Self.course(from: $0) }
    }

    public func list(filter: CourseFilter, page: PageRequest) async throws -> [Course] {
        var conditions: [SQLQueryString] = []
        if let owner = filter.createdBy {
            conditions.append("created_by = \(bind: owner)")
        }
        if let text = filter.titleContains {
            // A-Z folded only, on both sides and whatever the database's locale: SQLite's LOWER()
            // folds nothing else, and PostgreSQL's does so under the "C" collation.
            let title: SQLQueryString = database.kind == .postgres ? #"LOWER(title COLLATE "C")"# : "LOWER(title)"
            conditions.append("\(title) LIKE \(bind: SQLPattern.contains(text.asciiLowercased())) ESCAPE '\\'")
        }
        if let after = page.after {
            conditions.append("(created_at, id) < (\(bind: after.timestamp), \(bind: after.id))")
        }
        var query: SQLQueryString = "SELECT \(unsafeRaw: Self.columns) FROM courses"
        if !conditions.isEmpty {
            query += " WHERE " + conditions.joined(separator: " AND ")
        }
        query += " ORDER BY created_at DESC, id DESC LIMIT \(literal: page.fetchLimit)"
        return try await database.sql.raw(query).all().map { try Self.course(from: $0) }
    }

    public func update(_ course: Course) async throws -> Course? {
        try await database.sql.raw("""
            UPDATE courses SET title = \(bind: course.title), description = \(bind: course.description),
                updated_at = \(bind: course.updatedAt)
            WHERE id = \(bind: course.id)
            RETURNING \(unsafeRaw: Self.columns)
            """).first().map { try Self.course(from: $0) }
    }

    public func delete(id: UUID) async throws -> Bool {
        try await database.sql.raw("DELETE FROM courses WHERE id = \(bind: id) RETURNING id").first() != nil
    }

    /// Reads a course from a row whose course columns may carry a prefix (in joins).
    static func course(from row: any SQLRow, prefix: String = "") throws -> Course {
        Course(
            id: try row.decode(column: prefix + "id", as: UUID.self),
            title: try row.decode(column: prefix + "title", as: String.self),
            description: try row.decode(column: prefix + "description", as: String?.self),
            createdBy: try row.decode(column: prefix + "created_by", as: UUID.self),
            createdAt: Timestamp.normalized(try row.decode(column: prefix + "created_at", as: Date.self)),
            updatedAt: Timestamp.normalized(try row.decode(column: prefix + "updated_at", as: Date.self))
        )
    }
}

enum SQLPattern {
    /// A LIKE pattern (with `\` as escape) matching any text that contains `text` literally.
    static func contains(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { escaped.append("\\") }
            escaped.append(character)
        }
        return "%" + escaped + "%"
    }
}
