extension StringProtocol {
    /// Without HTTP's optional white space (SP and HTAB, RFC 9110 5.6.3) at either end: how
    /// list elements and parameters of header values are read.
    func trimmingHTTPWhitespace() -> String {
        var trimmed = self[...]
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        return String(trimmed)
    }
}
