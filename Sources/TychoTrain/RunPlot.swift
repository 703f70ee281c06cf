// RunPlot.swift: line charts of a run's curves, for a terminal (Unicode braille dots, 2x4 per character cell,
// or plain ASCII) and as an SVG file (axes, ticks, labels, a legend, one polyline per series, dashed markers for
// rollbacks). Non-finite values are left out of both (they are reported in the summary instead).
// What it refuses: nothing; an empty series draws an empty frame that says so.

import Foundation

public struct PlotSeries {
    public let name: String
    /// (step, value) pairs in step order; non-finite values are skipped when drawing.
    public let points: [(x: Double, y: Double)]

    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }

    var finite: [(x: Double, y: Double)] { points.filter { $0.x.isFinite && $0.y.isFinite } }
}

/// Value ranges and "nice" tick values (1, 2 or 5 times a power of ten).
enum PlotScale {
    static func range(_ values: [Double]) -> (Double, Double) {
        guard let lo = values.min(), let hi = values.max() else { return (0, 1) }
        if lo == hi { return (lo - (lo == 0 ? 1 : Swift.abs(lo) * 0.1), hi + (hi == 0 ? 1 : Swift.abs(hi) * 0.1)) }
        return (lo, hi)
    }

    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        let raw = (hi - lo) / Double(Swift.max(count - 1, 1))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var out: [Double] = []
        var v = ceil(lo / step) * step
        while v <= hi + step * 1e-9 {
            out.append(Swift.abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return out
    }

    /// A short label: `0.693`, `1.2e-05`, `1500`.
    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = Swift.abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.2g", v) }
        if v == v.rounded() { return String(Int(v)) }
        return String(format: "%.4g", v)
    }
}

public enum TerminalPlot {
    /// A chart of one series, `height` rows of `width` cells, with the y range on the left and steps below.
    public static func render(_ s: PlotSeries, width: Int = 60, height: Int = 10, unicode: Bool = true) -> String {
        let pts = s.finite
        var lines = ["\(s.name)"]
        guard !pts.isEmpty else { return (lines + ["  (no finite values)"]).joined(separator: "\n") }
        let (x0, x1) = pts.count == 1 ? (pts[0].x - 1, pts[0].x + 1) : (pts.first!.x, pts.last!.x)
        let (y0, y1) = PlotScale.range(pts.map(\.y))
        let subX = unicode ? 2 : 1, subY = unicode ? 4 : 1
        let pw = width * subX, ph = height * subY
        var dots = [[Bool]](repeating: [Bool](repeating: false, count: pw), count: ph)
        func px(_ x: Double) -> Int { Swift.min(pw - 1, Swift.max(0, Int(((x - x0) / (x1 - x0) * Double(pw - 1)).rounded()))) }
        func py(_ y: Double) -> Int { Swift.min(ph - 1, Swift.max(0, Int(((y1 - y) / (y1 - y0) * Double(ph - 1)).rounded()))) }
        var prev: (Int, Int)?
        for p in pts {
            let cur = (px(p.x), py(p.y))
            if let (ax, ay) = prev {
                // Bresenham from the previous point, so the curve is connected.
                var (x, y) = (ax, ay)
                let dx = Swift.abs(cur.0 - ax), dy = -Swift.abs(cur.1 - ay)
                let sx = ax < cur.0 ? 1 : -1, sy = ay < cur.1 ? 1 : -1
                var err = dx + dy
                while true {
                    dots[y][x] = true
                    if x == cur.0 && y == cur.1 { break }
                    let e2 = 2 * err
                    if e2 >= dy { err += dy; x += sx }
                    if e2 <= dx { err += dx; y += sy }
                }
            } else {
                dots[cur.1][cur.0] = true
            }
            prev = cur
        }
        let top = PlotScale.label(y1), bottom = PlotScale.label(y0), mid = PlotScale.label((y0 + y1) / 2)
        let labelWidth = [top, bottom, mid].map(\.count).max()!
        func pad(_ s: String) -> String { String(repeating: " ", count: labelWidth - s.count) + s }
        // Braille: dot bits by (column, row) within the cell.
        let bits: [[UInt32]] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]]
        for row in 0..<height {
            var text = ""
            for col in 0..<width {
                if unicode {
                    var code: UInt32 = 0
                    for cx in 0..<2 { for cy in 0..<4 where dots[row * 4 + cy][col * 2 + cx] { code |= bits[cx][cy] } }
                    text.unicodeScalars.append(code == 0 ? " " : Unicode.Scalar(0x2800 + code)!)
                } else {
                    text += dots[row][col] ? "*" : " "
                }
            }
            let label = row == 0 ? top : row == height - 1 ? bottom : row == height / 2 ? mid : ""
            lines.append(pad(label) + (unicode ? " ┤" : " |") + text)
        }
        let axis = String(repeating: " ", count: labelWidth) + (unicode ? " └" : " +") + String(repeating: unicode ? "─" : "-", count: width)
        lines.append(axis)
        let left = "step " + PlotScale.label(pts.first!.x), right = PlotScale.label(pts.last!.x)
        let gap = Swift.max(1, width + 2 - left.count - right.count)
        lines.append(String(repeating: " ", count: labelWidth) + left + String(repeating: " ", count: gap) + right)
        return lines.joined(separator: "\n")
    }
}

public enum SVGPlot {
    public struct Panel {
        public let title: String
        public let series: [PlotSeries]
        public init(title: String, series: [PlotSeries]) {
            self.title = title
            self.series = series
        }
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func num(_ v: Double) -> String { String(format: "%.2f", v) }

    /// An SVG document with the panels stacked, sharing the step axis range; `markers` are dashed vertical lines
    /// (rollbacks) labelled below the title.
    public static func render(title: String, panels: [Panel], markers: [(x: Double, label: String)] = []) -> String {
        let width = 760.0, panelHeight = 260.0, left = 78.0, right = 170.0, top = 40.0, gap = 56.0
        let height = top + Double(panels.count) * (panelHeight + gap) + 10
        let allX = panels.flatMap { $0.series.flatMap { $0.finite.map(\.x) } } + markers.map(\.x)
        let (x0, x1) = PlotScale.range(allX)
        let plotW = width - left - right
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
            <text x="\(num(width / 2))" y="22" text-anchor="middle" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        for (pi, panel) in panels.enumerated() {
            let py0 = top + Double(pi) * (panelHeight + gap) + 10
            let plotH = panelHeight - 30
            let ys = panel.series.flatMap { $0.finite.map(\.y) }
            let (y0, y1) = PlotScale.range(ys)
            func sx(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
            func sy(_ y: Double) -> Double { py0 + plotH - (y - y0) / (y1 - y0) * plotH }
            out += "<g class=\"panel\" id=\"panel-\(pi + 1)\">\n"
            out += "<text x=\"\(num(left))\" y=\"\(num(py0 - 6))\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
            // Grid and ticks.
            for t in PlotScale.ticks(y0, y1) {
                out += "<line class=\"grid\" x1=\"\(num(left))\" y1=\"\(num(sy(t)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(sy(t)))\" stroke=\"#e5e5e5\"/>\n"
                out += "<text x=\"\(num(left - 6))\" y=\"\(num(sy(t) + 4))\" text-anchor=\"end\">\(escape(PlotScale.label(t)))</text>\n"
            }
            for t in PlotScale.ticks(x0, x1) {
                out += "<line class=\"tick\" x1=\"\(num(sx(t)))\" y1=\"\(num(py0 + plotH))\" x2=\"\(num(sx(t)))\" y2=\"\(num(py0 + plotH + 5))\" stroke=\"black\"/>\n"
                out += "<text x=\"\(num(sx(t)))\" y=\"\(num(py0 + plotH + 18))\" text-anchor=\"middle\">\(escape(PlotScale.label(t)))</text>\n"
            }
            // Axes and their labels.
            out += "<line class=\"axis\" x1=\"\(num(left))\" y1=\"\(num(py0))\" x2=\"\(num(left))\" y2=\"\(num(py0 + plotH))\" stroke=\"black\"/>\n"
            out += "<line class=\"axis\" x1=\"\(num(left))\" y1=\"\(num(py0 + plotH))\" x2=\"\(num(left + plotW))\" y2=\"\(num(py0 + plotH))\" stroke=\"black\"/>\n"
            out += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(py0 + plotH + 34))\" text-anchor=\"middle\">step</text>\n"
            out += "<text transform=\"translate(16 \(num(py0 + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(panel.title))</text>\n"
            for m in markers {
                out += "<line class=\"rollback\" x1=\"\(num(sx(m.x)))\" y1=\"\(num(py0))\" x2=\"\(num(sx(m.x)))\" y2=\"\(num(py0 + plotH))\" stroke=\"#999\" stroke-dasharray=\"4 3\"><title>\(escape(m.label))</title></line>\n"
                out += "<text class=\"rollback-label\" x=\"\(num(sx(m.x) + 3))\" y=\"\(num(py0 + 10))\" fill=\"#999\" font-size=\"10\">rollback</text>\n"
            }
            // The curves and the legend.
            for (si, s) in panel.series.enumerated() {
                let color = colors[si % colors.count]
                let pts = s.finite.map { "\(num(sx($0.x))),\(num(sy($0.y)))" }.joined(separator: " ")
                out += "<polyline class=\"series\" data-name=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts)\"/>\n"
                let ly = py0 + 8 + Double(si) * 18
                out += "<line x1=\"\(num(left + plotW + 14))\" y1=\"\(num(ly))\" x2=\"\(num(left + plotW + 34))\" y2=\"\(num(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                out += "<text x=\"\(num(left + plotW + 40))\" y=\"\(num(ly + 4))\">\(escape(s.name))</text>\n"
            }
            if ys.isEmpty {
                out += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(py0 + plotH / 2))\" text-anchor=\"middle\" fill=\"#999\">no finite values</text>\n"
            }
            out += "</g>\n"
        }
        return out + "</svg>\n"
    }
}

extension RunHistory {
    /// The charts `tycho runs show` draws: loss (and eval_loss) in one panel, the rewards/* metrics in another.
    public var plotPanels: [SVGPlot.Panel] {
        func series(_ name: String) -> PlotSeries { PlotSeries(name: name, points: self.series(name).map { (Double($0.step), $0.value) }) }
        var panels: [SVGPlot.Panel] = []
        let losses = metricNames.filter { $0 == "loss" || $0 == "eval_loss" || $0 == "eval/loss" }
        if !losses.isEmpty { panels.append(SVGPlot.Panel(title: "loss", series: losses.map(series))) }
        let rewards = metricNames.filter { $0.hasPrefix("rewards/") || $0.hasPrefix("eval_rewards/") || $0 == "reward" }
        if !rewards.isEmpty { panels.append(SVGPlot.Panel(title: "rewards", series: rewards.map(series))) }
        return panels
    }

    /// Rollback events as (step, label) markers.
    public var rollbackMarkers: [(x: Double, label: String)] {
        events(kind: "rollback").compactMap { e in
            guard let s = e["step"]?.intValue ?? e["to_step"]?.intValue else { return nil }
            return (Double(s), "rollback: " + (e["cause"]?.stringValue ?? ""))
        }
    }

    /// Writes `plot.svg` into the run folder and returns its path.
    @discardableResult
    public func writeSVG() throws -> String {
        let path = directory + "/plot.svg"
        try DurableFiles.writeText(SVGPlot.render(title: "run \(name)", panels: plotPanels, markers: rollbackMarkers), to: path)
        return path
    }
}
