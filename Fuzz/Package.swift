// swift-tools-version: 6.1
// A libFuzzer target for SpindleHTTP's parser, outside the main package (libFuzzer brings
// its own main). Not built by CI; run for as long as you like:
//
//   swift build -c release --package-path Fuzz --sanitize=fuzzer --sanitize=address
//   Fuzz/.build/release/FuzzHTTPParser -max_total_time=600 Fuzz/corpus
import PackageDescription

let package = Package(
    name: "spindle-fuzz",
    dependencies: [.package(name: "spindle", path: "..")],
    targets: [
        .executableTarget(name: "FuzzHTTPParser", dependencies: [.product(name: "SpindleHTTP", package: "spindle")]),
    ],
    swiftLanguageModes: [.v6]
)
