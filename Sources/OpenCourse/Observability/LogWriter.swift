import Foundation
import Synchronization

/// Writes log lines from a thread of its own, so an event loop never waits on a file descriptor.
///
/// A line is appended to a bounded buffer; the writer thread, woken by the first line of a batch,
/// waits 2 ms for more and writes them all with one `write(2)` when the reader keeps up. A
/// stalled reader (a log pipe nobody drains) would otherwise stall every request; instead, once
/// the buffer is full, further lines are dropped and counted, and a warning with their number is
/// written when there is room again. Lines still buffered at exit are written by `flushAtExit()`,
/// which the process calls from `atexit`; a crash loses them (normally the last 2 ms of lines).
final class LogWriter: Sendable {
    /// The service's standard error, with 1 MiB of buffer (a few thousand lines).
    static let standardError = LogWriter(fileDescriptor: 2, capacity: 1 << 20)

    private struct Buffer {
        var bytes: [UInt8] = []
        var dropped = 0
    }

    /// How long the thread waits, once woken, before it writes: the most a line is delayed.
    static let gatherMicroseconds: UInt32 = 2_000

    let fileDescriptor: Int32
    let capacity: Int
    private let buffer = Mutex(Buffer())
    /// Held while a batch is taken and written, so that `flush()` and the thread keep the order.
    private let writing = Mutex(())
    private let wake = DispatchSemaphore(value: 0)

    init(fileDescriptor: Int32, capacity: Int) {
        self.fileDescriptor = fileDescriptor
        self.capacity = capacity
        let thread = Thread { [self] in
            while true {
                wake.wait()
                // Let lines gather: under load a wake-up and a write per line would cost more
                // than writing on the event loop did.
                usleep(Self.gatherMicroseconds)
                flush()
            }
        }
        thread.name = "log writer"
        thread.start()
    }

    /// Queues `line` and a newline; never blocks on the descriptor.
    func append(_ line: String) {
        // The thread drains everything it finds, so it needs waking only by the first line after
        // a drain, or by the first line dropped (for the warning).
        let wake = buffer.withLock { buffer -> Bool in
            guard buffer.bytes.count + line.utf8.count + 1 <= capacity else {
                buffer.dropped += 1
                return buffer.dropped == 1
            }
            let wasEmpty = buffer.bytes.isEmpty
            buffer.bytes.append(contentsOf: line.utf8)
            buffer.bytes.append(UInt8(ascii: "\n"))
            return wasEmpty
        }
        if wake { self.wake.signal() }
    }

    /// Writes everything appended so far before it returns.
    func flush() {
        writing.withLock { _ in
            var batch: [UInt8] = []
            while true {
                let dropped = buffer.withLock { buffer -> Int in
                    swap(&batch, &buffer.bytes)
                    defer { buffer.dropped = 0 }
                    return buffer.dropped
                }
                if dropped > 0 {
                    batch.append(contentsOf: Self.droppedNotice(dropped).utf8)
                    batch.append(UInt8(ascii: "\n"))
                }
                guard !batch.isEmpty else { return }
                write(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
    }

    /// `flush()`, but for a second at most: on a stalled descriptor the write (or the writer
    /// thread, holding the lock) never returns, and exiting matters more than the last lines.
    func flushAtExit() {
        let done = DispatchSemaphore(value: 0)
        Thread { [self] in
            flush()
            done.signal()
        }.start()
        _ = done.wait(timeout: .now() + 1)
    }

    private static func droppedNotice(_ count: Int) -> String {
        LogLine.json([
            "ts": LogLine.timestamp(), "level": "warning", "logger": "opencourse", "dropped": String(count),
            "msg": "log lines dropped: standard error did not keep up",
        ])
    }

    /// Finishes partial writes and waits out a full non-blocking descriptor; gives up only when
    /// the descriptor is closed or broken.
    private func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            guard let start = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(fileDescriptor, start + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    var ready = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, -1)
                } else {
                    return
                }
            }
        }
    }
}
