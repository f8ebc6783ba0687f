import CBcryptPair
import NIOPosix
import Synchronization

/// One bcrypt to compute: a password and the setting to hash it with (a new one, or a stored hash).
struct BcryptInput: Sendable {
    let password: String
    let setting: String
    /// The setting's cost, to pair only inputs that run the same number of rounds.
    let cost: Int?

    init(password: String, setting: String) {
        self.password = password
        self.setting = setting
        let digits = setting.utf8.dropFirst(4).prefix(2)
        self.cost = digits.count == 2 ? Int(String(decoding: digits, as: UTF8.self)) : nil
    }
}

/// bcrypt through CBcryptPair, one input or two interleaved.
enum PairedBcrypt {
    /// A new `$2b$` setting: the cost and 16 bytes from the system's CSPRNG.
    static func setting(cost: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<Int(OC_BCRYPT_SALTBYTES)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        var setting = [CChar](repeating: 0, count: Int(OC_BCRYPT_SETTINGSPACE))
        // `cost` comes from AppConfiguration, which keeps it within 4 to 31.
        let status = oc_bcrypt_setting(Int32(cost), salt, &setting)
        precondition(status == 0, "bcrypt cost \(cost) outside 4 to 31")
        return string(setting[...])
    }

    /// The hashes of `first` and `second`, or nil for an input whose setting is malformed.
    /// Two inputs of the same cost take about 1.1 times as long as one (see CBcryptPair).
    static func hash(_ first: BcryptInput, _ second: BcryptInput? = nil) -> (String?, String?) {
        let space = Int(OC_BCRYPT_HASHSPACE)
        var output = [CChar](repeating: 0, count: 2 * space)
        var failed: (Int32, Int32) = (1, 1)
        first.password.withCString { key0 in
            first.setting.withCString { setting0 in
                (second?.password ?? "").withCString { key1 in
                    (second?.setting ?? "").withCString { setting1 in
                        output.withUnsafeMutableBufferPointer { buffer in
                            guard let out = buffer.baseAddress else { return }
                            var jobs = [
                                oc_bcrypt_job(key: key0, setting: setting0, hash: out, failed: 1),
                                oc_bcrypt_job(key: key1, setting: setting1, hash: out + space, failed: 1),
                            ]
                            oc_bcrypt_run(&jobs, second == nil ? 1 : 2)
                            failed = (jobs[0].failed, jobs[1].failed)
                        }
                    }
                }
            }
        }
        return (
            failed.0 == 0 ? string(output[..<space]) : nil,
            second != nil && failed.1 == 0 ? string(output[space...]) : nil
        )
    }

    /// The text of a NUL-terminated C string in `bytes`.
    private static func string(_ bytes: ArraySlice<CChar>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether a computed hash matches a stored one, in time that depends on their lengths only.
    static func matches(_ computed: String, _ stored: String) -> Bool {
        oc_bcrypt_equal(computed, stored) == 1
    }
}

/// bcrypt requests waiting for a thread of the pool. Each request submits one work item; the
/// item takes the oldest waiting request and, when another of the same cost waits too, that one
/// as well, and runs the two interleaved. An item whose request a partner already took finds
/// the queue without it and returns, so the items never fall behind the requests.
final class BcryptQueue: Sendable {
    private struct Request: Sendable {
        let input: BcryptInput
        let continuation: CheckedContinuation<String?, any Error>
    }

    private let pool: NIOThreadPool
    private let waiting = Mutex<[Request]>([])
    private let metrics: AppMetrics?

    init(pool: NIOThreadPool, metrics: AppMetrics?) {
        self.pool = pool
        self.metrics = metrics
    }

    /// The hash of `input`, or nil when its setting is malformed.
    func hash(_ input: BcryptInput) async throws -> String? {
        try await withCheckedThrowingContinuation { continuation in
            waiting.withLock { $0.append(Request(input: input, continuation: continuation)) }
            pool.submit { state in self.serve(state) }
        }
    }

    /// Requests queued and not yet taken by a thread (for tests).
    var waitingCount: Int { waiting.withLock { $0.count } }

    private func serve(_ state: NIOThreadPool.WorkItemState) {
        guard case .active = state else {
            // The pool stopped before this item ran; every waiting request has such an item.
            let request = waiting.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            request?.continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
            return
        }
        let taken: (Request, Request?)? = waiting.withLock { queue in
            guard !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            guard let cost = first.input.cost, let partner = queue.firstIndex(where: { $0.input.cost == cost }) else {
                return (first, nil)
            }
            return (first, queue.remove(at: partner))
        }
        guard let (first, second) = taken else { return }
        if second != nil { metrics?.recordBcryptPair() }
        let (firstHash, secondHash) = PairedBcrypt.hash(first.input, second?.input)
        first.continuation.resume(returning: firstHash)
        second?.continuation.resume(returning: secondHash)
    }
}
