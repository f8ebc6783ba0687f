import Foundation

/// Ids travel as text in paths, tokens, cursors and bodies. Foundation's parser goes through
/// `sscanf` (1% of a cached course read in a profile) and its formatter makes an upper-case string
/// that is then lowered; these do the same work directly, and a test holds them to Foundation's
/// answers.
extension UUID {
    /// The API spells ids in lower case, as PostgreSQL does.
    var apiString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var index = 0
                for (position, byte) in bytes.enumerated() {
                    if position == 4 || position == 6 || position == 8 || position == 10 {
                        out[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    out[index] = UInt8.lowercaseHexDigit(byte >> 4)
                    out[index + 1] = UInt8.lowercaseHexDigit(byte & 0x0F)
                    index += 2
                }
                return index
            }
        }
    }

    /// The 36-character hyphenated form in either case. Stricter than `UUID(uuidString:)`, which
    /// also lets a space or a sign stand in for a digit (it scans with `sscanf`).
    init?(apiString text: some StringProtocol) {
        let parsed = text.utf8.withContiguousStorageIfAvailable(Self.parse)
            ?? Array(text.utf8).withUnsafeBufferPointer(Self.parse)
        guard let parsed else { return nil }
        self.init(uuid: parsed)
    }

    private static func parse(_ utf8: UnsafeBufferPointer<UInt8>) -> uuid_t? {
        guard utf8.count == 36 else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let valid = withUnsafeMutableBytes(of: &value) { out -> Bool in
            var index = 0
            for position in 0..<16 {
                if index == 8 || index == 13 || index == 18 || index == 23 {
                    guard utf8[index] == UInt8(ascii: "-") else { return false }
                    index += 1
                }
                guard let high = utf8[index].hexDigitValue, let low = utf8[index + 1].hexDigitValue else { return false }
                out[position] = high << 4 | low
                index += 2
            }
            return true
        }
        return valid ? value : nil
    }
}

extension UInt8 {
    /// The ASCII character of a value from 0 to 15: `0`-`9`, `a`-`f`.
    static func lowercaseHexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    /// The value of an ASCII hex digit of either case, nil for any other byte.
    var hexDigitValue: UInt8? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): self - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): self - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): self - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
