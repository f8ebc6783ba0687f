import Foundation
import SQLKit

/// Enrollments in PostgreSQL or SQLite: the SQL below is portable between both dialects.
public struct SQLEnrollmentRepository: EnrollmentRepository {
    let database: any DatabaseBackend

    public init(database: any DatabaseBackend) {
        self.database = database
    }

    private static let columns = "id, user_id, course_id, enrolled_at"

    enum InsertEnrollment: BatchableStatement {
        // One statement: the unique pair makes concurrent attempts insert once, and the EXISTS
        // turns an unknown course into "no row" rather than a foreign key error.
        static let sql = """
            INSERT INTO enrollments (id, user_id, course_id, enrolled_at)
            SELECT $1, $2, $3, $4
            WHERE EXISTS (SELECT 1 FROM courses WHERE id = $3)
            ON CONFLICT (user_id, course_id) DO NOTHING
            RETURNING \(SQLEnrollmentRepository.columns)
            """
        // Within a batch a repeated pair inserts once (one of its rows goes in; the others
        // conflict with it and return nothing, so they are answered by `EnrollmentOfUserInCourse`).
        // A pair enrolled before the statement began comes back from the outer query, which
        // reads the snapshot from before the insert, marked `created = false`: a repeat costs no
        // second statement. Rows go in in pair order, so two batches that share pairs take their
        // locks in one order; a deadlock that remains (with a course being deleted) fails the
        // batch, which reruns in halves.
        static let batchSQL = """
            WITH requested (id, user_id, course_id, enrolled_at) AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[])
            ), inserted AS (
                INSERT INTO enrollments (id, user_id, course_id, enrolled_at)
                SELECT r.id, r.user_id, r.course_id, r.enrolled_at FROM requested r
                WHERE EXISTS (SELECT 1 FROM courses WHERE id = r.course_id)
                ORDER BY r.user_id, r.course_id
                ON CONFLICT (user_id, course_id) DO NOTHING
                RETURNING \(SQLEnrollmentRepository.columns)
            )
            SELECT i.id AS request_id, i.id, i.user_id, i.course_id, i.enrolled_at, TRUE AS created FROM inserted i
            UNION ALL
            SELECT r.id AS request_id, e.id, e.user_id, e.course_id, e.enrolled_at, FALSE AS created
            FROM requested r JOIN enrollments e ON e.user_id = r.user_id AND e.course_id = r.course_id
            """
        static let keyColumn = "request_id"
    }

    enum EnrollmentOfUserInCourse: PreparedStatement {
        static let sql = "SELECT \(SQLEnrollmentRepository.columns) FROM enrollments WHERE user_id = $1 AND course_id = $2"
    }

    public func enroll(_ enrollment: Enrollment) async throws -> (enrollment: Enrollment, created: Bool)? {
        do {
            let inserted = try await database.mapFailures {
                try await database.runBatched(InsertEnrollment.self, [
                    .uuid(enrollment.id), .uuid(enrollment.userID), .uuid(enrollment.courseID), .timestamp(enrollment.enrolledAt),
                ])
            }
            if let row = inserted.first {
                // Only the batch form says `created`; the single statement returns inserted rows alone.
                let created = row.contains(column: "created") ? try row.decode(column: "created", as: Bool.self) : true
                return (try Self.enrollment(from: row), created)
            }
        } catch RepositoryError.missingReference {
            // The course (or user) was deleted between the check and the insert.
            return nil
        }
        let existing = try await database.run(EnrollmentOfUserInCourse.self, [.uuid(enrollment.userID), .uuid(enrollment.courseID)])
        return try existing.first.map { (try Self.enrollment(from: $0), false) }
    }

    public func unenroll(userID: UUID, courseID: UUID) async throws -> Bool {
        try await database.sql.raw("""
            DELETE FROM enrollments WHERE user_id = \(bind: userID) AND course_id = \(bind: courseID) RETURNING id
            """).first() != nil
    }

    public func list(userID: UUID, page: PageRequest) async throws -> [EnrolledCourse] {
        var query: SQLQueryString = """
            SELECT e.id, e.user_id, e.course_id, e.enrolled_at,
                   c.id AS c_id, c.title AS c_title, c.description AS c_description,
                   c.created_by AS c_created_by, c.created_at AS c_created_at, c.updated_at AS c_updated_at
            FROM enrollments e JOIN courses c ON c.id = e.course_id
            WHERE e.user_id = \(bind: userID)
            """
        query += Self.pageClause(page)
        return try await database.sql.raw(query).all().map { row in
            EnrolledCourse(
                enrollment: try Self.enrollment(from: row),
                course: try SQLCourseRepository.course(from: row, prefix: "c_")
            )
        }
    }

    public func roster(courseID: UUID, page: PageRequest) async throws -> [RosterEntry] {
        var query: SQLQueryString = """
            SELECT e.id, e.user_id, e.course_id, e.enrolled_at, u.name AS u_name, u.email AS u_email
            FROM enrollments e JOIN users u ON u.id = e.user_id
            WHERE e.course_id = \(bind: courseID)
            """
        query += Self.pageClause(page)
        return try await database.sql.raw(query).all().map { row in
            let enrollment = try Self.enrollment(from: row)
            return RosterEntry(
                enrollment: enrollment,
                user: UserSummary(
                    id: enrollment.userID,
                    name: try row.decode(column: "u_name", as: String?.self),
                    email: try row.decode(column: "u_email", as: String.self)
                )
            )
        }
    }

    /// Keyset condition and order for enrollment lists, newest first.
    private static func pageClause(_ page: PageRequest) -> SQLQueryString {
        var clause: SQLQueryString = ""
        if let after = page.after {
            clause += " AND (e.enrolled_at, e.id) < (\(bind: after.timestamp), \(bind: after.id))"
        }
        clause += " ORDER BY e.enrolled_at DESC, e.id DESC LIMIT \(literal: page.fetchLimit)"
        return clause
    }

    private static func enrollment(from row: any SQLRow) throws -> Enrollment {
        Enrollment(
            id: try row.decode(column: "id", as: UUID.self),
            userID: try row.decode(column: "user_id", as: UUID.self),
            courseID: try row.decode(column: "course_id", as: UUID.self),
            enrolledAt: Timestamp.normalized(try row.decode(column: "enrolled_at", as: Date.self))
        )
    }
}
