// `spindle demo pingpong` and `spindle trace view`, checked in a real browser: headless
// Chromium (Debian's; .ci/run installs it when missing) loads the generated page, which
// writes a summary of what it drew into the DOM; --dump-dom gives it back. A screenshot is
// taken in the same step. Without Chromium the browser checks are skipped, saying why.
import Foundation
import Testing

private func chromium() -> String? {
    for name in ["chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"] {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
    }
    return nil
}

/// Runs Chromium headless on `page` with `args`; returns stdout.
private func runChromium(_ exe: String, _ args: [String], page: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    let profile = NSTemporaryDirectory() + "spindle-chromium-\(getpid())"
    p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                   "--user-data-dir=\(profile)", "--virtual-time-budget=5000"] + args + ["file://\(page)"]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// The page's own summary (<pre id="spindle-summary">) from a DOM dump.
private func summary(_ dom: String) throws -> [String: Any] {
    let open = try #require(dom.range(of: "<pre id=\"spindle-summary\">"), "no summary element in the DOM")
    let close = try #require(dom.range(of: "</pre>", range: open.upperBound..<dom.endIndex))
    let text = String(dom[open.upperBound..<close.lowerBound]).replacingOccurrences(of: "&quot;", with: "\"")
        .replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
    return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "summary: \(text)")
}

@Suite(.serialized) struct TraceViewerTests {
    @Test func thePingPongDemoDrawsItsLanesAndArrowsInABrowser() throws {
        let dir = NSTemporaryDirectory() + "spindle-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let page = dir + "/pingpong.html", json = dir + "/pingpong.json"
        let r = try runSpindle(["demo", "pingpong", "--rounds", "6", "-o", page, "--json", json])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("wrote \(json) and \(page)"))
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script src"), "the page must need no network")
        // A split into pages of 40 events each keeps every page loadable.
        let split = try runSpindle(["trace", "view", json, "--max-events", "40", "-o", dir + "/split.html"])
        #expect(split.status == 0, "\(split.err)")
        #expect(split.out.contains("split-2.html"))
        guard let exe = chromium() else {
            print("TraceViewerTests: skipping the browser checks: no Chromium (install Debian's chromium; .ci/run does)")
            return
        }
        let s = try summary(try runChromium(exe, ["--dump-dom"], page: page))
        #expect((s["errors"] as? [Any])?.isEmpty == true, "the page logged errors: \(s)")
        #expect(s["workerLanes"] as? Int ?? 0 >= 1, "\(s)")
        // Two fibers and at least the two tasks (the run's own task is a third).
        #expect(s["coroutineLanes"] as? Int ?? 0 >= 4, "\(s)")
        #expect(s["slices"] as? Int ?? 0 >= 24, "\(s)")
        #expect(s["arrows"] as? Int ?? 0 >= 12, "\(s)")
        #expect(s["drawnSlices"] as? Int ?? 0 > 0, "\(s)")
        let lanes = s["laneNames"] as? [String] ?? []
        #expect(lanes.contains("fiber 1 'ping'") && lanes.contains("fiber 2 'pong'"), "\(lanes)")
        #expect(lanes.contains { $0.hasSuffix("'ping-task'") } && lanes.contains { $0.hasSuffix("'pong-task'") }, "\(lanes)")
        #expect(lanes.contains { $0.hasPrefix("worker ") }, "\(lanes)")
        let shot = dir + "/pingpong.png"
        _ = try runChromium(exe, ["--screenshot=\(shot)", "--window-size=1400,700", "--hide-scrollbars"], page: page)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "screenshot of \(png.count) bytes")
        let part = try summary(try runChromium(exe, ["--dump-dom"], page: dir + "/split-2.html"))
        #expect((part["errors"] as? [Any])?.isEmpty == true, "\(part)")
        #expect(part["slices"] as? Int ?? 0 > 0, "\(part)")
    }

    @Test func aFileThatIsNoTraceIsRefused() throws {
        let path = NSTemporaryDirectory() + "spindle-not-a-trace-\(getpid()).txt"
        try "hello".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let r = try runSpindle(["trace", "view", path, "-o", path + ".html"])
        #expect(r.status != 0)
        #expect(r.err.contains("not a trace"), "\(r.err)")
    }
}
