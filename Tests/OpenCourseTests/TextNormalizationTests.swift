import Foundation
import Testing
@testable import OpenCourse

@Suite("Text normalization")
struct TextNormalizationTests {
    /// Every code point up to U+3FFF (the last white space is U+3000) and the BOM, alone, around
    /// text and inside it: the same result as Foundation's trimming, which it replaces.
    @Test func trimmingMatchesFoundationForEveryWhiteSpaceCodePoint() {
        var mismatches: [String] = []
        for value in Array(0...0x3FFF) + [0xFEFF] {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let s = String(Character(scalar))
            for text in [s, s + "a b" + s + s, "a" + s + "b", s + "\u{301}x"] {
                let expected = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if text.trimmingWhitespace() != expected { mismatches.append(String(format: "U+%04X in %@", value, text.debugDescription)) }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
    }

    @Test func jsonMediaTypesAreRecognisedWithParametersCaseAndWhiteSpace() {
        for accepted in ["application/json", "Application/JSON; charset=utf-8", " \tapplication/json ;x=y", "application/problem+json", "application/vnd.api+JSON"] {
            #expect(APIJSON.isJSON(contentType: accepted), "\(accepted)")
        }
        for refused in ["text/plain", "application/xml", "application/jsonx", "json", "", "application/json\u{A0}", "text/json"] {
            #expect(!APIJSON.isJSON(contentType: refused), "\(refused)")
        }
    }
}
