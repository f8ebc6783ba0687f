import Foundation

/// base64url without padding (RFC 4648, section 5): the text of paging cursors and of JWT
/// segments. The alphabets are swapped byte by byte around Foundation's base64, whose
/// `replacingOccurrences` costs microseconds a call; every page that continues a list reads one.
enum Base64URL {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        String(decoding: Data(bytes).base64EncodedString().utf8.compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "+"): UInt8(ascii: "-")
            case UInt8(ascii: "/"): UInt8(ascii: "_")
            case UInt8(ascii: "="): nil
            default: byte
            }
        }, as: UTF8.self)
    }

    /// nil for anything that is not base64 (either alphabet, padding optional).
    static func decode(_ text: some Collection<UInt8>) -> Data? {
        var base64 = text.map { byte in
            switch byte {
            case UInt8(ascii: "-"): UInt8(ascii: "+")
            case UInt8(ascii: "_"): UInt8(ascii: "/")
            default: byte
            }
        }
        base64 += repeatElement(UInt8(ascii: "="), count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: Data(base64))
    }
}
