/// How one text field is checked and normalised. The presets are the API's rules.
public struct TextRule: Sendable {
    /// Code points, not Swift's grapheme clusters: what PostgreSQL's VARCHAR(n) and JSON Schema's
    /// maxLength count (a title of 150 "e" + combining accents is 300 of them).
    public enum Measure: Sendable {
        case codePoints
        case utf8Bytes
    }

    var required = false
    var nullable = false
    var trimmed = true
    /// A-Z only (`asciiLowercased`): Unicode lower-casing would turn the Kelvin sign into `k`
    /// and let a non-ASCII address through as another one.
    var lowercased = false
    var lineBreaksAllowed = false
    var length: ClosedRange<Int>
    var measure = Measure.codePoints
    /// Further syntax check; returns a message when the (normalised) value is not acceptable.
    var syntax: (@Sendable (String) -> String?)? = nil

    func required(_ isRequired: Bool = true) -> TextRule {
        var copy = self
        copy.required = isRequired
        return copy
    }

    static let email = TextRule(lowercased: true, length: 3...255, syntax: EmailSyntax.problem)
    static let password = TextRule(trimmed: false, length: 8...72, measure: .utf8Bytes)
    static let name = TextRule(nullable: true, length: 0...100)
    static let title = TextRule(length: 1...200)
    static let description = TextRule(nullable: true, lineBreaksAllowed: true, length: 0...10_000)
    static let searchText = TextRule(length: 1...200)
}

enum EmailSyntax {
    /// A pragmatic check: one `@`, a dot-atom local part and a dotted domain of letters, digits and hyphens.
    @Sendable static func problem(_ email: String) -> String? {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "must be a valid email address" }
        let local = parts[0]
        let domain = parts[1]
        let localAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.")
        guard (1...64).contains(local.count), local.allSatisfy({ localAllowed.contains($0) }),
              !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..")
        else { return "must be a valid email address" }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        let labelAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard labels.count >= 2,
              labels.allSatisfy({ label in
                  (1...63).contains(label.count) && label.allSatisfy { labelAllowed.contains($0) }
                      && !label.hasPrefix("-") && !label.hasSuffix("-")
              })
        else { return "must be a valid email address" }
        return nil
    }
}

extension String {
    /// Lower-cases A-Z and leaves every other code point alone, as SQL's LOWER() does on
    /// SQLite and on PostgreSQL in the C locale: search patterns must fold the same way.
    func asciiLowercased() -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: unicodeScalars.map { scalar in
            ("A"..."Z").contains(scalar) ? Unicode.Scalar(UInt8(truncatingIfNeeded: scalar.value + 32)) : scalar
        })
        return String(scalars)
    }

    /// Drops leading and trailing white space exactly as Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` does (Unicode's White_Space code points,
    /// and U+200B, which Foundation still counts), without its round trip through NSString on
    /// Linux, which cost a few percent of a request.
    func trimmingWhitespace() -> String {
        let isSpace = { (scalar: Unicode.Scalar) in scalar.properties.isWhitespace || scalar == "\u{200B}" }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}
