import Foundation
import HummingbirdTesting
import PropertyBased
import Testing
@testable import OpenCourse

/// Generated inputs against the validation rules and the cursor paging, through the router: any
/// valid input succeeds, any invalid one is a 422 naming exactly the bad fields, and paging through
/// any catalog yields every course once, in order. A failure prints the seed to replay it.
@Suite("Properties of validation and paging")
struct PropertyTests {
    // MARK: Validation

    @Test(arguments: TestDatabase.allCases)
    func registrationAcceptsEveryValidInputAndNamesEveryBadField(_ database: TestDatabase) async throws {
        try await withApp(database) { client in
            await propertyCheck(count: 150, input: RegistrationCase.generator) { registration in
                let response = try await client.call(.post, "/api/v1/auth/register", json: registration.body)
                if Self.expectCreatedOrNamed(response, invalid: registration.invalid, body: registration.body) {
                    let user = response.object("user")
                    #expect(user?["email"] as? String == registration.storedEmail)
                    #expect(user?["role"] as? String == registration.storedRole)
                    #expect((user?["name"] as? String) == registration.storedName)
                }
            }
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func courseCreationAcceptsEveryValidInputAndNamesEveryBadField(_ database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, _) = try await client.register(role: "instructor")
            await propertyCheck(count: 150, input: CourseCase.generator) { course in
                let response = try await client.call(.post, "/api/v1/courses", json: course.body, token: token)
                if Self.expectCreatedOrNamed(response, invalid: course.invalid, body: course.body) {
                    #expect(response.string("title") == course.storedTitle)
                    #expect(response.json?["description"] as? String == course.storedDescription)
                }
            }
        }
    }

    /// Valid input (no invalid fields) must be created; invalid input must be a 422 problem naming
    /// exactly the invalid fields. True when the input was valid and was created.
    static func expectCreatedOrNamed(_ response: APIResponse, invalid: Set<String>, body: [String: any Sendable]) -> Bool {
        guard invalid.isEmpty else {
            #expect(response.status == .unprocessableContent, "\(body)")
            #expect(response.isProblem)
            #expect(response.errorFields == invalid, "\(body)")
            return false
        }
        #expect(response.status == .created, "\(body): \(String(decoding: response.body, as: UTF8.self))")
        return response.status == .created
    }

    // MARK: Query strings

    /// The hand-written percent-decoding reads every query text as Foundation does (the same
    /// string, or nil for a malformed escape), except that bytes which are not UTF-8 are refused
    /// where Foundation sometimes repairs them: `f%A90g`, a lone continuation byte, is `f\u{FFFD}0g`
    /// to Foundation but `%ff%fe` is nil. No piece below holds U+FFFD, so one in Foundation's
    /// result is a repair.
    @Test func queryDecodingReadsAsFoundationDoes() async {
        let fixed: [(String, String?)] = [
            ("intro+swift", "intro swift"), ("%25", "%"), ("100%25+Swift", "100% Swift"), ("%C3%A9t%c3%A9", "été"),
            ("%ff%fe", nil), ("f%A90g", nil), ("%", nil), ("%4", nil), ("%zz", nil), ("%c3", nil), ("caf\u{E9}", "caf\u{E9}"), ("", ""),
        ]
        for (text, expected) in fixed {
            #expect(QueryParameters.decode(Substring(text)) == expected, "\(text)")
        }
        await propertyCheck(count: 2_000, input: Self.queryText) { text in
            let foundation = text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            let expected = foundation?.contains("\u{FFFD}") == true ? nil : foundation
            #expect(QueryParameters.decode(Substring(text)) == expected, "\(text)")
        }
    }

    /// Escapes whole and cut short, hex digits of both cases, bytes that do and do not form UTF-8.
    static let queryText = Generator<String, Shrink.None<String>> { rng in
        let pieces = ["%", "+", "a", "Z", "0", "9", "f", "F", "g", " ", "é", "😀", "%2", "%25", "%2B", "%c3", "%A9", "%C3%A9", "%e2%82%ac", "%F0%9F%98%80", "%ff", "%80", "%00", "%7e"]
        return (0..<Int.random(in: 0...12, using: &rng)).map { _ in pieces.randomElement(using: &rng) ?? "" }.joined()
    }

    /// Cursors and JWT segments: no `+`, `/` or `=` in the text, and every byte string comes back.
    @Test func base64URLUsesTheURLAlphabetAndRoundTrips() async {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode(Array("-_8".utf8)) == Data([0xFB, 0xFF]))
        #expect(Base64URL.decode(Array("+/8=".utf8)) == Data([0xFB, 0xFF]))
        #expect(Base64URL.decode(Array("a".utf8)) == nil)
        #expect(Base64URL.decode(Array("a!b=".utf8)) == nil)
        let bytes = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
            (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        await propertyCheck(count: 500, input: bytes) { bytes in
            let text = Base64URL.encode(bytes)
            #expect(!text.contains { "+/=".contains($0) }, "\(text)")
            #expect(Base64URL.decode(Array(text.utf8)) == Data(bytes), "\(bytes)")
        }
    }

    // MARK: Paging

    @Test(arguments: TestDatabase.allCases)
    func pagingReturnsEveryCourseOnceInOrder(_ database: TestDatabase) async throws {
        try await withApp(database) { client in
            await propertyCheck(count: 20, input: CatalogCase.generator) { catalog in
                // A fresh instructor per catalog; `createdBy` keeps catalogs of earlier runs out.
                let (token, owner) = try await client.register(role: "instructor")
                var created: [(id: String, createdAt: String, title: String)] = []
                for batch in catalog.titles.chunked(into: catalog.parallelism) {
                    let acknowledged = try await withThrowingTaskGroup(of: (String, String, String).self) { group in
                        for title in batch {
                            group.addTask {
                                let response = try await client.call(.post, "/api/v1/courses", json: ["title": title], token: token)
                                try #require(response.status == .created)
                                return (try #require(response.string("id")), try #require(response.string("createdAt")), title)
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    created += acknowledged.map { (id: $0.0, createdAt: $0.1, title: $0.2) }
                }
                // Newest first by (createdAt, id), as acknowledged; ISO 8601 UTC and UUID text sort as their values.
                let expected = created
                    .filter { catalog.search == nil || $0.title.asciiLowercased().contains(catalog.search!.asciiLowercased()) }
                    .sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
                    .map(\.id)

                var query = "createdBy=\(owner)&limit=\(catalog.limit)"
                if let search = catalog.search {
                    query += "&q=" + (search.addingPercentEncoding(withAllowedCharacters: .urlUnreserved) ?? search)
                }
                var seen: [String] = []
                var path: String? = "/api/v1/courses?\(query)"
                var pages = 0
                while let next = path, pages <= expected.count + 1 {
                    let page = try await client.call(.get, next)
                    try #require(page.status == .ok, "\(next): \(String(decoding: page.body, as: UTF8.self))")
                    #expect(page.items.count <= catalog.limit)
                    seen += page.items.compactMap { $0["id"] as? String }
                    pages += 1
                    // Follow the Link header, which must agree with nextCursor.
                    let link = page.headers[.link]
                    #expect((link != nil) == (page.nextCursor != nil))
                    path = link.flatMap { $0.split(separator: ">").first.map { String($0.dropFirst()) } }
                }
                #expect(seen == expected, "limit \(catalog.limit), q \(catalog.search ?? "-"), \(catalog.titles.count) courses")
                #expect(pages == max(1, (expected.count + catalog.limit - 1) / catalog.limit))
            }
        }
    }
}

// MARK: - Generated cases

/// A registration body with some fields valid and some not, and what the API must answer.
struct RegistrationCase: Sendable, CustomStringConvertible {
    var body: [String: any Sendable] = [:]
    var invalid: Set<String> = []
    var storedEmail = ""
    var storedRole = "student"
    var storedName: String?

    var description: String { "\(body) invalid=\(invalid.sorted())" }

    static let generator = Generator<RegistrationCase, Shrink.None<RegistrationCase>> { rng in
        var registration = RegistrationCase()
        let pick = { (rng: inout any SeededRandomNumberGenerator) in Double.random(in: 0..<1, using: &rng) < 0.25 }

        if pick(&rng) {
            registration.invalid.insert("email")
            registration.body["email"] = Texts.invalidEmail(using: &rng)
        } else {
            let email = Texts.validEmail(using: &rng)
            registration.body["email"] = email.sent
            registration.storedEmail = email.stored
        }
        if pick(&rng) {
            registration.invalid.insert("password")
            registration.body["password"] = Texts.invalidPassword(using: &rng)
        } else {
            registration.body["password"] = Texts.text(codePoints: 8...72, bytes: true, using: &rng)
        }
        if pick(&rng) {
            registration.invalid.insert("name")
            registration.body["name"] = Texts.invalidText(maxCharacters: 100, lineBreaksAllowed: false, using: &rng)
        } else if Bool.random(using: &rng) {
            let name = Texts.text(codePoints: 0...100, using: &rng)
            registration.body["name"] = name
            let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
            registration.storedName = trimmed.isEmpty ? nil : trimmed
        }
        if pick(&rng) {
            registration.invalid.insert("role")
            registration.body["role"] = ["admin", "teacher", "STUDENT", "", 1, true].randomElement(using: &rng)
        } else if let role = ["student", "instructor", nil].randomElement(using: &rng) ?? nil {
            registration.body["role"] = role
            registration.storedRole = role
        }
        return registration
    }
}

/// A course body with some fields valid and some not, and what the API must answer.
struct CourseCase: Sendable, CustomStringConvertible {
    var body: [String: any Sendable] = [:]
    var invalid: Set<String> = []
    var storedTitle = ""
    var storedDescription: String?

    var description: String { "\(body) invalid=\(invalid.sorted())" }

    static let generator = Generator<CourseCase, Shrink.None<CourseCase>> { rng in
        var course = CourseCase()
        if Double.random(in: 0..<1, using: &rng) < 0.3 {
            course.invalid.insert("title")
            course.body["title"] = [
                Texts.invalidText(maxCharacters: 200, lineBreaksAllowed: false, using: &rng),
                " \n\t ", "", "first line\nsecond line",
            ].randomElement(using: &rng)
        } else {
            let title = Texts.text(codePoints: 1...200, nonBlank: true, using: &rng)
            course.body["title"] = title
            course.storedTitle = title.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if Double.random(in: 0..<1, using: &rng) < 0.3 {
            course.invalid.insert("description")
            course.body["description"] = Texts.invalidText(maxCharacters: 10_000, lineBreaksAllowed: true, using: &rng)
        } else if Bool.random(using: &rng) {
            var description = Texts.text(codePoints: 0...300, using: &rng)
            if Bool.random(using: &rng) { description += "\nSecond paragraph,\r\n\twith a tab." }
            if Double.random(in: 0..<1, using: &rng) < 0.1 { description = Texts.text(codePoints: 9_990...10_000, nonBlank: true, using: &rng) }
            course.body["description"] = description
            course.storedDescription = description.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return course
    }
}

/// A catalog to page through: titles in creation order, some carrying a search marker.
struct CatalogCase: Sendable, CustomStringConvertible {
    var titles: [String]
    var limit: Int
    var search: String?
    /// How many creations run at once (ties in `createdAt` are then likely).
    var parallelism: Int

    var description: String { "\(titles.count) courses, limit \(limit), q \(search ?? "-"), parallelism \(parallelism)" }

    static let generator = Generator<CatalogCase, Shrink.None<CatalogCase>> { rng in
        // The marker holds LIKE's own wildcards, which the search must take literally.
        // Letters beyond ASCII are matched as given: LOWER() folds A-Z only (see README).
        let marker = ["50%_off", "Swift", "x_y", "100%", "ÉTÉ"].randomElement(using: &rng) ?? "Swift"
        let count = Int.random(in: 0...40, using: &rng)
        let titles = (0..<count).map { index in
            Bool.random(using: &rng) ? "Course \(index) \(marker)" : "Course \(index) plain"
        }
        return CatalogCase(
            titles: titles,
            limit: Int.random(in: 1...20, using: &rng),
            search: Bool.random(using: &rng) ? [marker, marker.lowercased(), marker.uppercased()].randomElement(using: &rng) : nil,
            parallelism: [1, 1, 4, 8].randomElement(using: &rng) ?? 1
        )
    }
}

/// Random text for the rules in `TextRule`, whose lengths count code points (bytes for passwords).
/// Lengths favour the edges of each range, where off-by-one mistakes live.
enum Texts {
    /// Pieces of text: one code point each, but for a letter with a combining accent (two code
    /// points, one Swift Character), which tells code points from characters.
    /// The spaces beyond ASCII (no-break, em, ideographic) check that trimming uses Unicode's
    /// white space, as Foundation's `.whitespacesAndNewlines` (the expected values) does.
    static let pieces: [String] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-'!?éüßçñ中文字😀🎓").map(String.init)
        + ["e\u{301}", "a\u{308}", "\u{A0}", "\u{2003}", "\u{3000}"]

    static func length(in range: ClosedRange<Int>, using rng: inout any SeededRandomNumberGenerator) -> Int {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return range.lowerBound
        case 1: return range.upperBound
        default: return Int.random(in: range, using: &rng)
        }
    }

    /// Text of `codePoints` code points, or of that many UTF-8 bytes when `bytes` is set.
    static func text(
        codePoints range: ClosedRange<Int>, bytes: Bool = false, nonBlank: Bool = false,
        using rng: inout any SeededRandomNumberGenerator
    ) -> String {
        let target = length(in: range, using: &rng)
        let measure: (String) -> Int = { bytes ? $0.utf8.count : $0.unicodeScalars.count }
        var text = ""
        while measure(text) < target {
            let piece = pieces.randomElement(using: &rng) ?? "a"
            text += measure(text) + measure(piece) <= target ? piece : "a"
        }
        if nonBlank && text.trimmingCharacters(in: .whitespaces).isEmpty {
            text = String(text.unicodeScalars.dropLast()) + "x"
        }
        return text
    }

    static func validEmail(using rng: inout any SeededRandomNumberGenerator) -> (sent: String, stored: String) {
        let localAlphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
        let labelAlphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        func word(_ alphabet: [Character], _ length: ClosedRange<Int>, _ rng: inout any SeededRandomNumberGenerator) -> String {
            String((0..<Int.random(in: length, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "a" })
        }
        // A random first part keeps generated addresses from colliding (409 is not under test);
        // drawn from the seeded generator, so that a seed replays the same addresses.
        var local = "u" + String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 36) + word(localAlphabet, 0...20, &rng)
        if Bool.random(using: &rng) { local += "." + word(localAlphabet, 1...10, &rng) }
        var labels = (0..<Int.random(in: 1...3, using: &rng)).map { _ in word(labelAlphabet, 1...12, &rng) }
        if Bool.random(using: &rng) { labels[0] += "-" + word(labelAlphabet, 1...5, &rng) }
        labels.append(word(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), 2...6, &rng))
        let email = local + "@" + labels.joined(separator: ".")
        let padding = [" ", "", "\t", "  "].randomElement(using: &rng) ?? ""
        return (padding + email + padding, email.lowercased())
    }

    static func invalidEmail(using rng: inout any SeededRandomNumberGenerator) -> any Sendable {
        let options: [any Sendable] = [
            "plainaddress", "two@@example.com", "a@b@example.com", "@example.com", "user@", "user@example",
            "user@-example.com", "user@example-.com", "user@exa_mple.com", ".user@example.com", "user.@example.com",
            "us..er@example.com", "us er@example.com", "user@example..com", "", "   ", "ü@example.com",
            String(repeating: "a", count: 65) + "@example.com",
            "a@" + String(repeating: "b", count: 250) + ".com",
            "user@" + String(repeating: "a", count: 64) + ".com",
            "user\u{0}@example.com", "\u{212A}ate@example.com", 42, true, ["user@example.com"], ["email": "user@example.com"],
        ]
        return options.randomElement(using: &rng) ?? "plainaddress"
    }

    static func invalidPassword(using rng: inout any SeededRandomNumberGenerator) -> any Sendable {
        let options: [any Sendable] = [
            text(codePoints: 0...7, bytes: true, using: &rng),
            text(codePoints: 73...200, bytes: true, using: &rng),
            String(repeating: "中", count: 25),  // 25 code points, 75 bytes
            "password\u{0}123", "pass\u{7}word", 12_345_678, false,
        ]
        return options.randomElement(using: &rng) ?? ""
    }

    /// Too long, a control character, or not a string.
    static func invalidText(maxCharacters: Int, lineBreaksAllowed: Bool, using rng: inout any SeededRandomNumberGenerator) -> any Sendable {
        let tooLong = "x" + text(codePoints: (maxCharacters - 1)...(maxCharacters + 40), using: &rng) + "x"
        // A limit's worth of accented letters: within it as characters, twice over it as code points.
        let accents = String(repeating: "e\u{301}", count: maxCharacters)
        var options: [any Sendable] = [tooLong, accents, "bell\u{7}here", "nul\u{0}here", "escape\u{1B}[0m", 7, 3.5, ["text"]]
        if !lineBreaksAllowed { options.append("line\nbreak") }
        return options.randomElement(using: &rng) ?? tooLong
    }
}

extension Array {
    func chunked(into size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: Swift.max(1, size)).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
