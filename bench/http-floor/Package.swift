// swift-tools-version:6.1
import PackageDescription

// Two servers that answer with responses captured from opencourse, to measure what the HTTP layer
// alone costs on a machine: SwiftNIO's HTTP/1 pipeline with a synchronous handler, and Hummingbird 2
// with one route per response and no middleware. See floor.sh and BENCHMARKS.md.
let package = Package(
    name: "http-floor",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .target(name: "CapturedResponses"),
        .executableTarget(name: "FloorNIO", dependencies: [
            "CapturedResponses",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .executableTarget(name: "FloorHummingbird", dependencies: [
            "CapturedResponses",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ]
)
