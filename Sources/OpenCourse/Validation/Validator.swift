import Foundation

/// What validation decided about one optional field of an update.
public enum FieldUpdate<Value: Sendable>: Sendable {
    case keep
    case set(Value)

    var value: Value? {
        if case .set(let value) = self { return value }
        return nil
    }
}

extension FieldUpdate: Equatable where Value: Equatable {}

/// The one validation helper: collects every problem of a request, then throws them together as
/// `AppError.validation`.
public struct Validator: Sendable {
    private(set) var errors: [FieldError] = []

    public init() {}

    mutating func fail(_ field: String, _ message: String) {
        errors.append(FieldError(field: field, message: message))
    }

    /// Throws when any field failed.
    func check() throws {
        if !errors.isEmpty { throw AppError.validation(errors) }
    }

    /// Validates and normalises one text field. `.keep` means absent (or invalid, with an error recorded).
    mutating func text(_ input: FieldInput<String>, field: String, rule: TextRule) -> FieldUpdate<String?> {
        switch input {
        case .absent:
            if rule.required { fail(field, "is required") }
            return .keep
        case .null:
            if rule.nullable && !rule.required { return .set(nil) }
            fail(field, rule.required ? "is required" : "must be a string")
            return .keep
        case .wrongType:
            fail(field, "must be a string")
            return .keep
        case .value(let raw):
            return text(raw, field: field, rule: rule).map { .set($0) } ?? .keep
        }
    }

    /// Validates a plain string (a query parameter, say); nil when invalid, with an error recorded.
    mutating func text(_ raw: String, field: String, rule: TextRule) -> String? {
        var value = raw
        if rule.trimmed { value = value.trimmingWhitespace() }
        if rule.lowercased { value = value.asciiLowercased() }
        if value.unicodeScalars.contains(where: { Self.isForbiddenControl($0, lineBreaksAllowed: rule.lineBreaksAllowed) }) {
            fail(field, "must not contain control characters")
            return nil
        }
        let length = rule.measure == .utf8Bytes ? value.utf8.count : value.unicodeScalars.count
        if !rule.length.contains(length) {
            fail(field, Self.lengthMessage(rule, blankAfterTrim: value.isEmpty && !raw.isEmpty))
            return nil
        }
        if let syntax = rule.syntax, let message = syntax(value) {
            fail(field, message)
            return nil
        }
        return value
    }

    /// A required text field; nil when invalid or absent (with an error recorded).
    mutating func requiredText(_ input: FieldInput<String>, field: String, rule: TextRule) -> String? {
        text(input, field: field, rule: rule.required()).value ?? nil
    }

    /// One value of a closed set, given as its raw string.
    mutating func choice<Choice: RawRepresentable & Sendable>(
        _ input: FieldInput<String>, field: String, allowed: [Choice]
    ) -> Choice? where Choice.RawValue == String {
        let message = "must be one of: " + allowed.map(\.rawValue).joined(separator: ", ")
        switch input {
        case .absent: return nil
        case .null, .wrongType:
            fail(field, message)
            return nil
        case .value(let raw):
            guard let choice = Choice(rawValue: raw), allowed.contains(where: { $0.rawValue == raw }) else {
                fail(field, message)
                return nil
            }
            return choice
        }
    }

    /// An integer given as text (query parameters), which must lie in `range`; never clamped.
    mutating func integer(_ raw: String?, field: String, range: ClosedRange<Int>) -> Int? {
        guard let raw else { return nil }
        guard let value = Int(raw), range.contains(value) else {
            fail(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    /// A UUID given as text.
    mutating func uuid(_ raw: String?, field: String) -> UUID? {
        guard let raw else { return nil }
        guard let value = UUID(apiString: raw) else {
            fail(field, "must be a UUID")
            return nil
        }
        return value
    }

    private static func isForbiddenControl(_ scalar: Unicode.Scalar, lineBreaksAllowed: Bool) -> Bool {
        guard scalar.properties.generalCategory == .control else { return false }
        return !(lineBreaksAllowed && (scalar == "\n" || scalar == "\r" || scalar == "\t"))
    }

    private static func lengthMessage(_ rule: TextRule, blankAfterTrim: Bool) -> String {
        if blankAfterTrim && rule.length.lowerBound > 0 { return "must not be blank" }
        let unit = rule.measure == .utf8Bytes ? "bytes" : "characters"
        if rule.length.lowerBound == 0 { return "must be at most \(rule.length.upperBound) \(unit)" }
        return "must be \(rule.length.lowerBound) to \(rule.length.upperBound) \(unit)"
    }
}
