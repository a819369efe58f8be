// swift-tools-version: 6.1
// The Swift HTTP peer servers, a package of their own so Spindle never depends on NIO or
// Hummingbird: `nio-server` (SwiftNIO's NIOHTTP1 with a handler of ours) and `hb-server`
// (Hummingbird 2's router). Built by Benchmarks/http/run.sh with its own scratch path.
import PackageDescription

let package = Package(
    name: "http-swift-peers",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(name: "nio-server", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "hb-server", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
    ]
)
