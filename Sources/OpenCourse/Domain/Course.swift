import Foundation

public struct Course: Sendable, Equatable {
    public var id: UUID
    public var title: String
    public var description: String?
    public var createdBy: UUID
    public var createdAt: Date
    public var updatedAt: Date
}

/// Filters of the public catalog listing.
public struct CourseFilter: Sendable, Equatable {
    /// Case-insensitive substring of the title; `%` and `_` are ordinary characters.
    public var titleContains: String?
    public var createdBy: UUID?
}
