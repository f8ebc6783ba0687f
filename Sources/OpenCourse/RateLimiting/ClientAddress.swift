#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address or CIDR range, for `TRUSTED_PROXIES`.
public struct IPRange: Sendable, Equatable {
    let network: [UInt8]
    let prefixLength: Int

    /// Parses `10.0.0.0/8`, `192.168.1.7`, `::1`, `fd00::/8`.
    public init?(_ text: String) {
        // Empty parts kept, so that "/" or "10.0.0.0/" is refused instead of indexing nothing.
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress.bytes(of: String(parts[0])) else { return nil }
        let maximum = address.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length) else { return nil }
            self.prefixLength = length
        } else {
            self.prefixLength = maximum
        }
        self.network = address
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address, network) where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }
}

enum IPAddress {
    /// 4 bytes for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6; nil when not an address.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return Array(bytes[12...])
            }
            return bytes
        }
        return nil
    }

    /// What the per-client limits count: an IPv4 address, or the /64 network of an IPv6 one. An
    /// IPv6 host is usually given a whole /64, so counting single addresses would let one client
    /// rotate through 2^64 of them, past the registration cap and the login lockout, and grow the
    /// token buckets without bound. Text that is not an address (`unknown`) is its own key.
    static func limitKey(of address: String) -> String {
        guard let bytes = bytes(of: address) else { return address }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}

/// Decides which address a request comes from: the socket peer, or, when the peer is a trusted
/// proxy, the first untrusted hop of `X-Forwarded-For` read from the right (the left part of
/// that header is whatever the client chose to send).
public struct ClientAddressResolver: Sendable {
    let trustedProxies: [IPRange]

    public init(trustedProxies: [IPRange]) {
        self.trustedProxies = trustedProxies
    }

    public func resolve(peer: String?, forwardedFor: [String]) -> String {
        guard let peer else { return "unknown" }
        guard isTrusted(peer), !forwardedFor.isEmpty else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }
            .map { $0.trimmingHTTPWhitespace() }
            .filter { !$0.isEmpty }
        var client = peer
        for hop in hops.reversed() {
            client = String(hop.prefix(64))
            if !isTrusted(client) { break }
        }
        return client
    }

    private func isTrusted(_ address: String) -> Bool {
        guard !trustedProxies.isEmpty, let bytes = IPAddress.bytes(of: address) else { return false }
        return trustedProxies.contains { $0.contains(bytes) }
    }
}
