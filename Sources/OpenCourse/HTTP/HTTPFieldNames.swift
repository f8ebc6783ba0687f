import HTTPTypes

extension HTTPField.Name {
    /// RFC 8288 web linking, for the next page of a list.
    static let link = constant("Link")

    private static func constant(_ name: String) -> HTTPField.Name {
        guard let field = HTTPField.Name(name) else { preconditionFailure("invalid header name \(name)") }
        return field
    }
}
