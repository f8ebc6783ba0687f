import Foundation

/// Finds a member name given twice in one JSON object. RFC 8259 leaves duplicates to the reader,
/// and Foundation's decoder silently keeps one of them; two different `email`s in one request
/// would be ambiguous, so the API refuses them. Runs on a body that already parsed as JSON.
enum JSONMemberNames {
    private enum Container {
        /// Names as bytes: Swift's String equality would take canonically equivalent names (`é`
        /// and `e` + U+0301) for one, while JSON tells them apart.
        case object(names: Set<[UInt8]>, expectingName: Bool, lastName: String?)
        case array(index: Int)
    }

    /// The first repeated name, with the path to it (`extra[0].a`); nil if there is none.
    static func firstDuplicate(in data: Data) -> String? {
        var stack: [Container] = []
        let decoder = JSONDecoder()
        var index = data.startIndex
        while index < data.endIndex {
            switch data[index] {
            case UInt8(ascii: "\""):
                let end = endOfString(in: data, from: index)
                if case .object(var names, true, _) = stack.last {
                    let name = decodeName(data[index..<end], decoder: decoder)
                    if !names.insert(Array(name.utf8)).inserted {
                        return path(to: name, in: stack.dropLast())
                    }
                    stack[stack.count - 1] = .object(names: names, expectingName: false, lastName: name)
                }
                index = end
                continue
            case UInt8(ascii: "{"):
                stack.append(.object(names: [], expectingName: true, lastName: nil))
            case UInt8(ascii: "["):
                stack.append(.array(index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                switch stack.last {
                case .object(let names, _, let lastName):
                    stack[stack.count - 1] = .object(names: names, expectingName: true, lastName: lastName)
                case .array(let position):
                    stack[stack.count - 1] = .array(index: position + 1)
                case nil:
                    break
                }
            default:
                break
            }
            index += 1
        }
        return nil
    }

    /// `a.b[2].name`: the names and positions of the containers around the repeated name.
    private static func path(to name: String, in containers: ArraySlice<Container>) -> String {
        var path = ""
        for container in containers {
            switch container {
            case .object(_, _, let lastName): path += path.isEmpty ? (lastName ?? "") : "." + (lastName ?? "")
            case .array(let position): path += "[\(position)]"
            }
        }
        return path.isEmpty ? name : path + "." + name
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
    private static func decodeName(_ token: Data, decoder: JSONDecoder) -> String {
        if !token.contains(UInt8(ascii: "\\")) {
            return String(decoding: token.dropFirst().dropLast(), as: UTF8.self)
        }
        return (try? decoder.decode(String.self, from: token)) ?? String(decoding: token, as: UTF8.self)
    }
}
