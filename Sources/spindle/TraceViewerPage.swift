// The page `spindle trace view` writes: one self-contained HTML file (inline CSS and JS, no
// network) that draws a Chrome trace-event JSON (Spindle's, TraceExport.swift) on a canvas:
// a lane per worker and per coroutine, wake arrows, zoom (wheel, +/-) and pan (drag,
// arrows), and a slice's details on click (coroutine, duration, what it waited for, who
// woke it). It writes a summary of what it drew into <pre id="spindle-summary"> (JSON:
// lanes, slices, arrows, errors, and how long parsing and drawing took; with #bench in the
// URL also the mean redraw time of twenty zoom steps), which the browser test reads with
// --dump-dom. Drawing is culled to the visible window, and slices narrower than a pixel
// stand for their whole pixel column (the next one is found by binary search), so a
// redraw costs pixels, not events.

enum TraceViewerPage {
    static func html(title: String, traceJSON: [UInt8], part: (index: Int, count: Int, base: String)?) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: head(title: title).utf8)
        if let part, part.count > 1 {
            var nav = "<nav>part \(part.index) of \(part.count):"
            for i in 1...part.count {
                nav += i == part.index ? " <b>\(i)</b>" : " <a href=\"\(part.base)-\(i).html\">\(i)</a>"
            }
            out.append(contentsOf: (nav + "</nav>\n").utf8)
        }
        out.append(contentsOf: body.utf8)
        out.append(contentsOf: "<script id=\"trace-data\" type=\"application/json\">".utf8)
        // "</" cannot occur: the exporter writes "<" in strings as \u003c, and JSON has
        // no "<" outside strings. A foreign file is checked all the same.
        var i = 0
        while i < traceJSON.count {
            if traceJSON[i] == UInt8(ascii: "<") {
                out.append(contentsOf: "\\u003c".utf8)
            } else {
                out.append(traceJSON[i])
            }
            i += 1
        }
        out.append(contentsOf: "</script>\n<script>\n".utf8)
        out.append(contentsOf: script.utf8)
        out.append(contentsOf: "</script>\n</body>\n</html>\n".utf8)
        return out
    }

    private static func head(title: String) -> String {
        let safe = title.replacingAll("<", "&lt;")
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(safe): Spindle trace</title>
        <style>
        body { margin: 0; font: 12px system-ui, sans-serif; background: #fafafa; color: #222; }
        header { padding: 6px 10px; background: #263238; color: #eceff1; }
        header b { font-size: 14px; }
        nav { padding: 4px 10px; background: #eceff1; }
        #wrap { position: relative; }
        canvas { display: block; cursor: grab; }
        #details { position: fixed; right: 10px; bottom: 10px; width: 380px; max-height: 45%; overflow: auto;
                   background: #fff; border: 1px solid #90a4ae; padding: 8px; white-space: pre-wrap;
                   font: 12px ui-monospace, monospace; display: none; }
        #spindle-summary { display: none; }
        </style>
        </head>
        <body>
        <header><b>\(safe)</b> &middot; wheel or +/- to zoom, drag or arrow keys to pan, click a slice for details, 0 to reset</header>

        """
    }

    private static let body = """
    <div id="wrap"><canvas id="view"></canvas></div>
    <div id="details"></div>
    <pre id="spindle-summary"></pre>

    """

    private static let script = #"""
    "use strict";
    const summary = { lanes: 0, workerLanes: 0, coroutineLanes: 0, slices: 0, arrows: 0, drawnSlices: 0, errors: [] };
    function report() { document.getElementById("spindle-summary").textContent = JSON.stringify(summary); }
    window.addEventListener("error", e => { summary.errors.push(String(e.message)); report(); });
    try {
      const t00 = performance.now();
      summary.htmlMs = Math.round(t00);  // navigation start to here: reading the page
      const data = JSON.parse(document.getElementById("trace-data").textContent);
      summary.parseMs = Math.round(performance.now() - t00);
      const events = Array.isArray(data) ? data : (data.traceEvents || []);
      const names = new Map(), procNames = new Map(), order = new Map();
      const lanes = new Map();            // "pid:tid" -> { pid, tid, slices: [] }
      const starts = [], finishes = new Map();
      function lane(pid, tid) {
        const k = pid + ":" + tid;
        let l = lanes.get(k);
        if (!l) { l = { key: k, pid, tid, slices: [] }; lanes.set(k, l); }
        return l;
      }
      const open = new Map();
      for (const e of events) {
        if (e.ph === "M") {
          if (e.name === "thread_name") names.set(e.pid + ":" + e.tid, e.args.name);
          if (e.name === "process_name") procNames.set(e.pid, e.args.name);
          if (e.name === "thread_sort_index") order.set(e.pid + ":" + e.tid, e.args.sort_index);
        } else if (e.ph === "X") {
          lane(e.pid, e.tid).slices.push({ ts: e.ts, dur: e.dur || 0, name: e.name, args: e.args || {}, cat: e.cat || "" });
        } else if (e.ph === "B") {
          open.set(e.pid + ":" + e.tid, e);
        } else if (e.ph === "E") {
          const b = open.get(e.pid + ":" + e.tid);
          if (b) { lane(e.pid, e.tid).slices.push({ ts: b.ts, dur: e.ts - b.ts, name: b.name, args: b.args || {}, cat: b.cat || "" }); open.delete(e.pid + ":" + e.tid); }
        } else if (e.ph === "s") {
          starts.push(e);
        } else if (e.ph === "f") {
          finishes.set(e.id, e);
        }
      }
      // Timestamps from the first event on (a foreign trace may hold absolute epoch
      // microseconds, whose sums lose the precision a deep zoom needs).
      let base = Infinity;
      for (const l of lanes.values()) for (const s of l.slices) base = Math.min(base, s.ts);
      for (const e of starts) base = Math.min(base, e.ts);
      if (!isFinite(base)) base = 0;
      for (const l of lanes.values()) for (const s of l.slices) s.ts -= base;
      for (const e of starts) e.ts -= base;
      for (const e of finishes.values()) e.ts -= base;
      const laneList = [...lanes.values()].sort((a, b) => a.pid - b.pid || (order.get(a.key) ?? a.tid) - (order.get(b.key) ?? b.tid));
      laneList.forEach((l, i) => { l.row = i; l.name = names.get(l.key) || ("track " + l.tid); l.slices.sort((a, b) => a.ts - b.ts); });
      const arrows = [];
      for (const s of starts) {
        const f = finishes.get(s.id);
        if (!f) continue;
        const from = lanes.get(s.pid + ":" + s.tid), to = lanes.get(f.pid + ":" + f.tid);
        if (!from || !to) continue;
        arrows.push({ from, to, ts0: s.ts, ts1: f.ts, waker: (s.args || {}).waker, wakee: (s.args || {}).wakee });
      }
      arrows.sort((a, b) => a.ts0 - b.ts0);
      summary.lanes = laneList.length;
      summary.workerLanes = laneList.filter(l => l.pid === 1).length;
      summary.coroutineLanes = laneList.filter(l => l.pid === 2).length;
      summary.slices = laneList.reduce((n, l) => n + l.slices.length, 0);
      summary.arrows = arrows.length;
      summary.laneNames = laneList.map(l => l.name);
      let t0 = Infinity, t1 = -Infinity;
      for (const l of laneList) for (const s of l.slices) { t0 = Math.min(t0, s.ts); t1 = Math.max(t1, s.ts + s.dur); }
      if (!isFinite(t0)) { t0 = 0; t1 = 1; }
      const canvas = document.getElementById("view"), ctx = canvas.getContext("2d");
      const LABEL = 230, ROW = 20, TOP = 26, HEADER = 18;
      let view = { start: t0, end: t1 + (t1 - t0) * 0.02 + 1e-3 };
      const palette = ["#42a5f5", "#66bb6a", "#ffa726", "#ab47bc", "#26a69a", "#ef5350", "#8d6e63", "#5c6bc0", "#d4e157", "#ec407a"];
      function color(s) {
        if (s.name === "parked" || s.name.startsWith("parked:")) return "#cfd8dc";
        if (s.name === "suspended") return "#eceff1";
        if (s.name === "runnable") return "#fff59d";
        if (s.name === "running") return "#81c784";
        let h = 0; for (const c of s.name) h = (h * 31 + c.charCodeAt(0)) | 0;
        return palette[Math.abs(h) % palette.length];
      }
      function size() {
        canvas.width = Math.max(600, window.innerWidth);
        canvas.height = TOP + HEADER + laneList.length * ROW + 10;
      }
      function x(ts) { return LABEL + (ts - view.start) / (view.end - view.start) * (canvas.width - LABEL - 10); }
      function tsAt(px) { return view.start + (px - LABEL) / (canvas.width - LABEL - 10) * (view.end - view.start); }
      function rowY(l) { return TOP + HEADER + l.row * ROW; }
      function firstStart(sl, t) { let lo = 0, hi = sl.length; while (lo < hi) { const m = (lo + hi) >> 1; if (sl[m].ts < t) lo = m + 1; else hi = m; } return lo; }
      function firstVisible(sl, t) { let lo = 0, hi = sl.length; while (lo < hi) { const m = (lo + hi) >> 1; if (sl[m].ts + sl[m].dur < t) lo = m + 1; else hi = m; } return lo; }
      function fmt(us) { return us >= 1e6 ? (us / 1e6).toFixed(3) + " s" : us >= 1e3 ? (us / 1e3).toFixed(3) + " ms" : us.toFixed(3) + " µs"; }
      function draw() {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        ctx.font = "11px system-ui, sans-serif";
        let drawn = 0;
        // time axis
        ctx.fillStyle = "#455a64";
        // Ticks 1, 2 or 5 times a power of ten apart, at least 110 px apart.
        const span = view.end - view.start, room = (canvas.width - LABEL - 10) / 110;
        let step = Math.pow(10, Math.floor(Math.log10(span / room)));
        for (const m of [1, 2, 5, 10]) { if (span / (step * m) <= room) { step *= m; break; } }
        for (let t = Math.ceil((view.start - t0) / step) * step + t0; t < view.end; t += step) {
          const px = x(t); ctx.fillRect(px, TOP, 1, 6); ctx.fillText(fmt(t - t0), px + 2, TOP + 14);
        }
        let lastPid = null;
        for (const l of laneList) {
          const y = rowY(l);
          if (l.pid !== lastPid) { ctx.fillStyle = "#b0bec5"; ctx.fillRect(0, y - 1, canvas.width, 1); lastPid = l.pid; }
          ctx.fillStyle = l.row % 2 ? "#f5f5f5" : "#ffffff"; ctx.fillRect(LABEL, y, canvas.width - LABEL, ROW);
          ctx.fillStyle = "#263238"; ctx.fillText(l.name.slice(0, 36), 4, y + 14);
          const sl = l.slices;
          let i = firstVisible(sl, view.start);
          while (i < sl.length && sl[i].ts <= view.end) {
            const s = sl[i];
            const a = Math.max(LABEL, x(s.ts)), b = Math.min(canvas.width - 10, x(s.ts + s.dur));
            const w = b - a;
            ctx.fillStyle = color(s); ctx.fillRect(a, y + 2, Math.max(1, w), ROW - 4); drawn++;
            if (w > 40) { ctx.fillStyle = "#102027"; ctx.fillText(s.name.slice(0, Math.floor(w / 6)), a + 3, y + 14); }
            // Narrower than a pixel: one mark stands for the rest of its pixel column, so a
            // redraw costs the lane's pixels (times a binary search), not its slices.
            // (The last slice skipped may reach past the column: it is drawn next.)
            i = w < 1 ? Math.max(i + 1, firstStart(sl, tsAt(Math.floor(a) + 1)) - 1) : i + 1;
          }
        }
        ctx.strokeStyle = "#d32f2f"; ctx.fillStyle = "#d32f2f"; ctx.lineWidth = 1;
        for (const ar of arrows) {
          if (ar.ts1 < view.start || ar.ts0 > view.end) continue;
          const xa = x(ar.ts0), ya = rowY(ar.from) + ROW / 2, xb = x(ar.ts1), yb = rowY(ar.to) + ROW / 2;
          ctx.beginPath(); ctx.moveTo(xa, ya); ctx.lineTo(xb, yb); ctx.stroke();
          const ang = Math.atan2(yb - ya, xb - xa);
          ctx.beginPath(); ctx.moveTo(xb, yb); ctx.lineTo(xb - 6 * Math.cos(ang - 0.4), yb - 6 * Math.sin(ang - 0.4));
          ctx.lineTo(xb - 6 * Math.cos(ang + 0.4), yb - 6 * Math.sin(ang + 0.4)); ctx.fill();
        }
        summary.drawnSlices = drawn;
        report();
      }
      function zoom(factor, px) {
        const t = tsAt(px), a = t - (t - view.start) * factor, b = t + (view.end - t) * factor;
        if (b - a < 1e-3) return;
        view = { start: a, end: b }; draw();
      }
      function pan(dx) { const d = dx * (view.end - view.start) / (canvas.width - LABEL); view = { start: view.start - d, end: view.end - d }; draw(); }
      canvas.addEventListener("wheel", e => { e.preventDefault(); zoom(e.deltaY > 0 ? 1.25 : 0.8, e.offsetX); }, { passive: false });
      let drag = null;
      canvas.addEventListener("mousedown", e => { drag = { x: e.offsetX, moved: false }; });
      window.addEventListener("mouseup", () => { drag = null; });
      canvas.addEventListener("mousemove", e => { if (drag) { const dx = e.offsetX - drag.x; if (Math.abs(dx) > 2) drag.moved = true; drag.x = e.offsetX; pan(dx); } });
      canvas.addEventListener("click", e => {
        const l = laneList.find(l => e.offsetY >= rowY(l) && e.offsetY < rowY(l) + ROW);
        const box = document.getElementById("details");
        if (!l) { box.style.display = "none"; return; }
        const t = tsAt(e.offsetX), tol = 3 * (view.end - view.start) / canvas.width;
        const s = l.slices.find(s => s.ts - tol <= t && t <= s.ts + s.dur + tol);
        if (!s) { box.style.display = "none"; return; }
        box.textContent = describe(l, s); box.style.display = "block";
      });
      window.addEventListener("keydown", e => {
        const mid = LABEL + (canvas.width - LABEL) / 2;
        if (e.key === "+" || e.key === "=") zoom(0.8, mid);
        else if (e.key === "-") zoom(1.25, mid);
        else if (e.key === "ArrowLeft") pan(80);
        else if (e.key === "ArrowRight") pan(-80);
        else if (e.key === "0") { view = { start: t0, end: t1 }; draw(); }
      });
      function describe(l, s) {
        const lines = [s.name, "track: " + l.name, "start: " + fmt(s.ts - t0), "duration: " + fmt(s.dur)];
        for (const k of Object.keys(s.args)) lines.push(k + ": " + s.args[k]);
        const who = s.args.coroutine || (l.pid === 2 ? l.name : null);
        if (who) {
          const cl = laneList.find(x => x.pid === 2 && x.name === who);
          if (cl) {
            const before = cl.slices.filter(x => x.ts + x.dur <= s.ts + 1e-6 && x.name !== "running" && x.name !== "runnable").pop();
            if (before) lines.push("waited for: " + before.name + " (" + fmt(before.dur) + ")");
          }
          const woke = arrows.filter(a => a.wakee === who && a.ts1 <= s.ts + 1e-3 && a.ts1 >= s.ts - 1e-3).pop();
          if (woke) lines.push("woken by: " + woke.waker + " at " + fmt(woke.ts0 - t0));
        }
        return lines.join("\n");
      }
      const t01 = performance.now();
      size(); draw();
      summary.loadMs = Math.round(performance.now() - t00);
      summary.drawMs = Math.round(performance.now() - t01);
      // #bench: twenty zoom steps in and out around the middle, timed (a redraw each).
      if (location.hash === "#bench") {
        const mid = LABEL + (canvas.width - LABEL) / 2, b0 = performance.now();
        for (let k = 0; k < 10; k++) zoom(0.7, mid);
        for (let k = 0; k < 10; k++) zoom(1 / 0.7, mid);
        summary.redrawMs = Math.round((performance.now() - b0) / 20 * 10) / 10;
      }
      window.addEventListener("resize", () => { size(); draw(); });
    } catch (err) {
      summary.errors.push(String(err && err.stack || err));
      report();
    }
    report();
    """#
}

extension String {
    fileprivate func replacingAll(_ a: Character, _ b: String) -> String {
        var s = ""
        for c in self { if c == a { s += b } else { s.append(c) } }
        return s
    }
}
