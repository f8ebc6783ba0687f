import Foundation
import Synchronization

/// Ids and creation times for new rows, made together. Ids are UUIDv7 (RFC 9562): the creation
/// millisecond followed by a counter (method 1) and random bits, so within one instance the order
/// of (created_at, id) is the order of creation even for rows made in the same millisecond, and
/// new rows append to the primary-key index instead of landing at random places in it.
enum RecordStamp {
    private struct State {
        var milliseconds: Int64 = 0
        var counter: UInt16 = 0
    }

    private static let state = Mutex(State())

    static func next() -> (id: UUID, createdAt: Date) {
        let wall = Timestamp.milliseconds(of: Date())
        let (milliseconds, counter) = state.withLock { state -> (Int64, UInt16) in
            if wall > state.milliseconds {
                state.milliseconds = wall
                // Start low in the 12-bit space so that many ids fit in one millisecond.
                state.counter = UInt16.random(in: 0..<1024)
            } else if state.counter < 0x0FFF {
                state.counter += 1
            } else {
                // 3,000+ ids in one millisecond: borrow the next one rather than lose the order.
                state.milliseconds += 1
                state.counter = 0
            }
            return (state.milliseconds, state.counter)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
        bytes[6] = 0x70 | UInt8(counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        var random = SystemRandomNumberGenerator()
        for index in 8..<16 { bytes[index] = random.next() }
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        let id = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                             bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        return (id, Timestamp.fromMilliseconds(milliseconds))
    }
}
