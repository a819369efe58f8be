// swift-tools-version: 6.1
// The SwiftNIO echo server, a package of its own so Spindle never depends on NIO.
import PackageDescription

let package = Package(
    name: "nio-echo",
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.101.2")],
    targets: [
        .executableTarget(name: "nio-echo", dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
    ]
)
