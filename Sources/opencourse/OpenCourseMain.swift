import OpenCourse

/// The executable only hands over to the command-line interface of the library.
@main
enum OpenCourseMain {
    static func main() async {
        await OpenCourseCommand.main()
    }
}
