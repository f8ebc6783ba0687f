import Foundation

/// Finds a member name given twice in one JSON object. RFC 8259 leaves duplicates to the reader,
/// and Foundation's decoder silently keeps one of them; two different `email`s in one request
/// would be ambiguous, so the API refuses them. Runs on a body that already parsed as JSON.
enum JSONMemberNames {
    /// The first repeated name, as a dotted path from the top object (`course.title`); nil if none.
    static func firstDuplicate(in data: Data) -> String? {
        struct Object {
            /// As bytes: Swift's String equality would take canonically equivalent names (`é`
            /// and `e` + U+0301) for one, while JSON tells them apart.
            var names: Set<[UInt8]> = []
            var expectingName = true
            var lastName: String?
        }
        // One entry per open container: an object, or nil for an array.
        var stack: [Object?] = []
        var index = data.startIndex
        while index < data.endIndex {
            let byte = data[index]
            switch byte {
            case UInt8(ascii: "\""):
                let end = endOfString(in: data, from: index)
                if var object = stack.last ?? nil, object.expectingName {
                    let name = decodeName(data[index..<end])
                    if !object.names.insert(Array(name.utf8)).inserted {
                        return (stack.dropLast().compactMap { $0?.lastName } + [name]).joined(separator: ".")
                    }
                    object.expectingName = false
                    object.lastName = name
                    stack[stack.count - 1] = object
                }
                index = end
                continue
            case UInt8(ascii: "{"):
                stack.append(Object())
            case UInt8(ascii: "["):
                stack.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                if var object = stack.last ?? nil {
                    object.expectingName = true
                    stack[stack.count - 1] = object
                }
            default:
                break
            }
            index += 1
        }
        return nil
    }

    /// The index just after the closing quote of the string that starts at `start`.
    private static func endOfString(in data: Data, from start: Data.Index) -> Data.Index {
        var index = start + 1
        while index < data.endIndex {
            switch data[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return data.endIndex
    }

    /// A name with escapes (`"\u0065mail"`) is compared by what it means, not how it is spelt.
    private static func decodeName(_ token: Data) -> String {
        if !token.contains(UInt8(ascii: "\\")), let plain = String(data: token.dropFirst().dropLast(), encoding: .utf8) {
            return plain
        }
        return (try? JSONDecoder().decode(String.self, from: token)) ?? String(decoding: token, as: UTF8.self)
    }
}
