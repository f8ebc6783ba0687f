import NIOCore
import NIOPosix
import OpenCourse

/// The executable only hands over to the command-line interface of the library.
@main
enum OpenCourseMain {
    static func main() async {
        // Swift concurrency's jobs run on NIO's event loops instead of a separate thread pool: a
        // request's handler, its database query and its socket I/O then stay on one thread
        // instead of waking another for every await (on two cores the hops cost more than the
        // work). Nothing blocking runs on the global executor: bcrypt and SQLite have their own
        // thread pools. Installed first, on the main thread, before any task is enqueued.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await OpenCourseCommand.main()
    }
}
