// RunBinding+Plot.swift: `run.plot(r_or_dir[, {metrics=, title=}])`: a run's curves as SVG text (the chart
// `tycho runs show` writes to plot.svg), for `display` in a notebook or for saving. Reads the run's folder, so a
// live run shows every step logged so far.

import CLua
import CLuaShim
import Foundation
import TychoTrain

extension RunBinding {
    /// SVG of the run in `directory`: the given metric panels (each a list of series names), or the default
    /// loss and rewards panels.
    static func plotSVG(directory: String, metrics: [[String]]?, title: String?) throws -> String {
        let h: RunHistory
        do { h = try RunHistory.load(directory: directory) } catch {
            throw LuaBindingError("cannot read the run in \(directory): \(error)")
        }
        var panels = h.plotPanels
        if let metrics {
            panels = metrics.map { names in
                SVGPlot.Panel(title: names.joined(separator: ", "),
                              series: names.map { n in PlotSeries(name: n, points: h.series(n).map { (Double($0.step), $0.value) }) })
            }
        }
        return SVGPlot.render(title: title ?? "run \(h.name)", panels: panels, markers: h.rollbackMarkers)
    }

    static let plotFunction = LuaFunction("plot", [.required("run", .any), .optional("options", .table, default: "{metrics=, title=}")], doc: """
        A run's curves as SVG text: run.plot(r) (a run or its folder) draws loss and the rewards/* metrics;
          {metrics = {"loss", {"rewards/chosen", "rewards/rejected"}}} draws one panel per entry (a name, or a list
          sharing a panel); title= replaces "run NAME". display(run.plot(r)) shows it in a notebook.
        """) { a in
        let directory: String
        if let r = a.lua.object(1, metatable: metatable, as: RunRecord.self) { directory = r.directory }
        else if let s = a.lua.string(1) { directory = s }
        else { throw a.typeError(1, "a run (run.start) or a run folder") }
        try a.checkOptions(2, allowed: ["metrics", "title"])
        var metrics: [[String]]?
        if !a.isNil(2), a.lua.rawGet(2, field: "metrics") != LUA_TNIL {
            defer { a.lua.pop() }
            let t = a.lua.absolute(-1)
            guard a.lua.type(t) == LUA_TTABLE else { throw a.argumentError(2, "a table whose field 'metrics' is a list of names") }
            var panels: [[String]] = []
            for i in 1...max(a.lua.rawLength(t), 1) where i <= a.lua.rawLength(t) {
                _ = a.lua.rawGet(t, index: i)
                defer { a.lua.pop() }
                if let s = a.lua.string(-1) { panels.append([s]); continue }
                guard a.lua.type(-1) == LUA_TTABLE else { throw a.argumentError(2, "a table whose field 'metrics' is a list of names (or lists of names)") }
                var names: [String] = []
                for j in 1...max(a.lua.rawLength(-1), 1) where j <= a.lua.rawLength(-1) {
                    _ = a.lua.rawGet(-1, index: j)
                    defer { a.lua.pop() }
                    guard let s = a.lua.string(-1) else { throw a.argumentError(2, "a table whose field 'metrics' is a list of names (or lists of names)") }
                    names.append(s)
                }
                panels.append(names)
            }
            metrics = panels
        } else if !a.isNil(2) {
            a.lua.pop()
        }
        return a.push(try plotSVG(directory: directory, metrics: metrics, title: try a.optionString(2, "title")))
    }
}
