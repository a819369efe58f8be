// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "spindle",
    products: [
        .library(name: "Spindle", targets: ["Spindle"]),
        // Add to a test target and its XCTest / swift-testing suite runs on Spindle: a
        // load-time constructor installs Spindle as Swift's global executors
        // (SPINDLE_AUTO_INSTALL=0 turns it off).
        .library(name: "SpindleAutoInstall", targets: ["SpindleAutoInstall"]),
        // HTTP/1.1 server and client on Spindle's sockets, for tasks and fibers.
        .library(name: "SpindleHTTP", targets: ["SpindleHTTP"]),
        // TLS on Spindle's TCP streams, with the system's OpenSSL 3.
        .library(name: "SpindleTLS", targets: ["SpindleTLS"]),
        // The runtime's metrics published through swift-metrics by a periodic sampler.
        .library(name: "SpindleMetrics", targets: ["SpindleMetrics"]),
        // The runtime's warnings through swift-log.
        .library(name: "SpindleLogging", targets: ["SpindleLogging"]),
        .executable(name: "spindle", targets: ["spindle"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Only for `spindle bench`: AsyncChannel is a comparison peer of Spindle's Channel.
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        // SpindleHTTP's public types (HTTPRequest, HTTPResponse, HTTPFields), without
        // Foundation (no traits), and its Service conformance.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Tests only: SwiftNIO's HTTP/1 decoders (llhttp inside) judge the same inputs as
        // SpindleHTTP's parser (Tests/SpindleHTTPDifferentialTests).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // The only C in the runtime: futex, thread-local slot, CPU affinity, and the
        // Linux headers that Glibc's module does not expose. See CSpindle.h.
        .target(name: "CSpindle"),
        .target(
            name: "Spindle",
            dependencies: [
                "CSpindle",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The system's OpenSSL 3 (libssl-dev), found through pkg-config.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // TLS on Spindle's TCP streams (TLSStream, client and server contexts). Builds on
        // Spindle; Spindle knows nothing of it.
        .target(name: "SpindleTLS", dependencies: ["Spindle", "COpenSSL"]),
        // Runtime.metrics() through swift-metrics (an integration target: Spindle knows
        // nothing of it).
        .target(name: "SpindleMetrics", dependencies: ["Spindle", .product(name: "Metrics", package: "swift-metrics")]),
        // RuntimeWarning through swift-log (an integration target).
        .target(name: "SpindleLogging", dependencies: ["Spindle", .product(name: "Logging", package: "swift-log")]),
        // HTTP/1.1 on Spindle: the parser, the server, the client. Builds on Spindle;
        // Spindle knows nothing of it.
        .target(
            name: "SpindleHTTP",
            dependencies: [
                "Spindle",
                "SpindleTLS",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The load-time constructor (C) and its Swift side, which installs Spindle as
        // Swift's global executors before main. See Sources/SpindleAutoInstall.
        .target(name: "CSpindleAutoInstall"),
        .target(name: "SpindleAutoInstall", dependencies: ["Spindle", "CSpindleAutoInstall"]),
        // C loops for the benchmarks (bare context switch, thread ping-pong).
        .target(name: "CSpindleBench", dependencies: ["CSpindle"]),
        // What `spindle bench` computes (medians, ratios, the JSON schema, the cost table),
        // apart from measuring, so tests can check it.
        .target(name: "SpindleBenchCore"),
        .executableTarget(
            name: "spindle",
            dependencies: [
                "Spindle",
                "CSpindleBench",
                "SpindleBenchCore",
                "SpindleHTTP",
                "SpindleTLS",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            ]
        ),
        // A tiny program the tests run in a subprocess: global-executor installation is
        // process-wide and must happen at program start, and crashes must be observed
        // from outside.
        .executableTarget(name: "spindle-probe", dependencies: ["Spindle"]),
        // Examples: an echo server and client, each with an async and a fiber version.
        .executableTarget(name: "echo-server", dependencies: ["Spindle"], path: "Examples/EchoServer"),
        .executableTarget(name: "echo-client", dependencies: ["Spindle"], path: "Examples/EchoClient"),
        // An HTTP server (tasks or fibers) and the defining document's 1,000 concurrent fetches.
        .executableTarget(name: "http-server", dependencies: ["Spindle", "SpindleHTTP", "SpindleTLS"], path: "Examples/HTTPServer"),
        .executableTarget(name: "FetchMany", dependencies: ["Spindle", "SpindleHTTP"], path: "Examples/FetchMany"),
        // C helpers the fiber-switch tests need (pinning registers across a switch).
        .target(name: "CSpindleTestSupport", dependencies: ["CSpindle"]),
        .testTarget(name: "SpindleTests", dependencies: ["Spindle", "CSpindle", "CSpindleTestSupport", "spindle-probe"]),
        // The bench's computations, and `spindle bench` run as a user runs it (a subprocess).
        .testTarget(name: "SpindleBenchTests", dependencies: ["SpindleBenchCore", "spindle"]),
        // The HTTP parser, server and client, and against curl and Python's http modules.
        .testTarget(
            name: "SpindleMetricsTests",
            dependencies: ["SpindleMetrics", "Spindle", "SpindleTestTools", .product(name: "MetricsTestKit", package: "swift-metrics")]
        ),
        .testTarget(
            name: "SpindleLoggingTests",
            dependencies: ["SpindleLogging", "Spindle", .product(name: "Logging", package: "swift-log")]
        ),
        // What the HTTP and TLS tests share: running curl, python3 and openssl beside them.
        .target(name: "SpindleTestTools", path: "Tests/SpindleTestTools"),
        // TLSStream against openssl s_server / s_client and Python's ssl module.
        .testTarget(
            name: "SpindleTLSTests",
            dependencies: ["SpindleTLS", "Spindle", "SpindleTestTools", "CSpindleTestSupport"],
            exclude: ["make-pki.sh"]
        ),
        .testTarget(
            name: "SpindleHTTPTests",
            dependencies: [
                "SpindleHTTP", "SpindleTLS", "Spindle", "SpindleTestTools",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The parser against llhttp (through SwiftNIO's decoders) on a corpus and on
        // mutated inputs.
        .testTarget(
            name: "SpindleHTTPDifferentialTests",
            dependencies: [
                "SpindleHTTP",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
