import Foundation
import NIOCore
import NIOPosix
import OpenCourse

/// The executable only hands over to the command-line interface of the library.
@main
enum OpenCourseMain {
    static func main() async {
        // Swift concurrency's jobs run on NIO's event loops instead of a thread pool of their
        // own, so an await no longer wakes a second set of threads to resume (on two cores the
        // hops cost more than the work: 50 -> 44 us of CPU per /health). bcrypt and SQLite keep
        // their own thread pools, and log lines are written by a thread of their own; what runs on
        // the loops is non-blocking. Installed first, on the main thread.
        if !NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() {
            FileHandle.standardError.write(Data("opencourse: NIO could not become the global executor; running on the default one\n".utf8))
        }
        await OpenCourseCommand.main()
    }
}
