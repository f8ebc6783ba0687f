import HTTPTypes

extension HTTPField.Name {
    /// RFC 8288 web linking, for the next page of a list.
    static let link = constant("Link")
    static let requestID = constant("X-Request-Id")
    static let xFrameOptions = constant("X-Frame-Options")
    static let xForwardedFor = constant("X-Forwarded-For")
    static let referrerPolicy = constant("Referrer-Policy")
    static let rateLimitLimit = constant("RateLimit-Limit")
    static let rateLimitRemaining = constant("RateLimit-Remaining")
    static let rateLimitReset = constant("RateLimit-Reset")

    private static func constant(_ name: String) -> HTTPField.Name {
        guard let field = HTTPField.Name(name) else { preconditionFailure("invalid header name \(name)") }
        return field
    }
}
