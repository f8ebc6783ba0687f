/// A problem with one named field of a request, reported back to the client.
public struct FieldError: Sendable, Equatable, Codable {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// The single error type that services throw. The HTTP layer maps each case to one status code
/// and a problem details body; services never see HTTP types.
public enum AppError: Error, Sendable, Equatable {
    /// The request cannot be understood at all (malformed JSON, a cursor not issued by us);
    /// `field` names the parameter when one is to blame.
    case badRequest(String, field: FieldError? = nil)
    /// No valid credentials were presented.
    case unauthorized(String)
    /// Credentials are valid but the caller may not do this.
    case forbidden(String)
    /// The resource does not exist (or the caller may not know it exists).
    case notFound(String)
    /// The body is not in a format this route accepts (not JSON).
    case unsupportedMediaType(String)
    /// The request conflicts with the current state (duplicate email).
    case conflict(String)
    /// One or more fields are invalid; every bad field is listed.
    case validation([FieldError])
    /// Too many attempts: try again after `retryAfter` seconds. `limit` is the allowance per window.
    case rateLimited(String, limit: Int, retryAfter: Int)
    /// A dependency (the database) cannot be reached right now.
    case unavailable(String)
}
