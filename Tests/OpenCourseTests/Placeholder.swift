import Testing
import HummingbirdTesting
@testable import OpenCourse
