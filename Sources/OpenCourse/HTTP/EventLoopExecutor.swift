import NIOCore
import NIOPosix

/// A task executor that runs jobs on one NIO event loop. Request handling prefers the event loop
/// of its connection, so after each await it resumes where the I/O happened instead of hopping to
/// Swift's global pool and back, which on two cores costs more than the work itself.
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// One executor per loop of the server's event loop group, made once. Loops outside it (the
    /// in-memory ones of router tests) get none and run as usual.
    static let forServerLoops: [ObjectIdentifier: EventLoopExecutor] = {
        var executors: [ObjectIdentifier: EventLoopExecutor] = [:]
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            executors[ObjectIdentifier(loop)] = EventLoopExecutor(loop)
        }
        return executors
    }()

    static func forLoop(_ eventLoop: any EventLoop) -> EventLoopExecutor? {
        forServerLoops[ObjectIdentifier(eventLoop)]
    }
}
