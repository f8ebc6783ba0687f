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

    /// The id parser and formatter replace Foundation's. A canonical id (36 characters, hyphens at
    /// 8, 13, 18 and 23, hex digits in either case elsewhere) parses to Foundation's value; every
    /// other text is refused, including some Foundation lets through because it scans each byte
    /// with `sscanf("%2hhx")` (a space or a sign in place of a digit: " b56dd7c-…", "-b56dd7c-…").
    @Test func idTextMatchesFoundation() {
        func isCanonical(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            guard bytes.count == 36 else { return false }
            return bytes.indices.allSatisfy { index in
                [8, 13, 18, 23].contains(index) ? bytes[index] == UInt8(ascii: "-") : "0123456789abcdefABCDEF".utf8.contains(bytes[index])
            }
        }
        var mismatches: [String] = []
        var canonical = 0
        let replacements: [Character] = ["0", "9", "a", "f", "A", "F", "g", "G", "z", "-", "+", " ", "{", "\u{0}", "é", "٣", "\u{FF10}"]
        for _ in 0..<50 {
            let id = UUID()
            if id.apiString != id.uuidString.lowercased() { mismatches.append("format \(id)") }
            var variants = [id.uuidString, id.uuidString.lowercased(), " " + id.uuidString, id.uuidString + "0", "{\(id.uuidString)}"]
            let characters = Array(id.uuidString.lowercased())
            for index in characters.indices {
                var deleted = characters
                deleted.remove(at: index)
                variants.append(String(deleted))
                for replacement in replacements {
                    var changed = characters
                    changed[index] = replacement
                    variants.append(String(changed))
                    var inserted = characters
                    inserted.insert(replacement, at: index)
                    variants.append(String(inserted))
                }
            }
            for text in variants {
                let parsed = UUID(apiString: text)
                if isCanonical(text) {
                    canonical += 1
                    if parsed == nil || parsed != UUID(uuidString: text) { mismatches.append(text.debugDescription) }
                } else if parsed != nil {
                    mismatches.append(text.debugDescription)
                }
            }
            if UUID(apiString: Substring(id.uuidString)) != id { mismatches.append("substring \(id)") }
        }
        #expect(canonical > 1_000)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
    }
}
