import Foundation
import QuantaCore
import QuantaIO

/// `report.md` and `report.html` from a comparison report.
extension ComparisonReport {
    static let columns = ["", "scheme", "calibration", "runtime", "MB", "bpw", "PPL", "±", "ΔPPL", "mean KLD", "±", "p99 KLD", "same top %", "RMS Δp %", "quantize s", "peak MB"]

    func cells(_ r: Row, front: Set<String>) -> [String] {
        [front.contains(r.key) ? "★" : "", r.scheme, r.calibration.isEmpty ? "—" : r.calibration, r.runtime, fixed(Double(r.bytes) / 1e6, 3),
         fixed(r.bitsPerWeight, 3), fixed(r.perplexity, 3), fixed(r.perplexityError, 3), fixed(r.deltaPerplexity, 3), scientific(r.meanKLD),
         scientific(r.meanKLDError), scientific(r.p99KLD), fixed(r.sameTopPercent, 2), fixed(r.rmsDeltaPPercent, 3), fixed(r.quantizeSeconds, 2),
         fixed(Double(r.peakMemoryBytes) / 1e6, 0)]
    }

    /// Writes report.json, report.md and report.html into `folder` (created if missing), each atomically.
    public func write(to folder: String) throws {
        try FileSystem.createFolder(folder)
        for (name, text) in [("report.json", json.serialized(indent: 2) + "\n"), ("report.md", markdown), ("report.html", html)] {
            let writer = try AtomicFileWriter(path: FileSystem.join(folder, name))
            try writer.write(Array(text.utf8))
            try writer.commit()
        }
    }

    /// The table per evaluation text and runtime, by size, ★ on the Pareto front of (bytes, mean KLD).
    public var markdown: String {
        var out = ["# Quantization comparison: \(modelPath)", "",
                   "Model sha256 `\(modelSHA256)`, \(grouped(parameters)) parameters; Quanta \(quantaVersion). "
                   + "Protocol: " + protocolSettings.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ".", ""]
        out.append("Calibration sets: " + (calibrationSets.isEmpty ? "none" : calibrationSets.map { "`\($0.name)` (\($0.path))" }.joined(separator: ", ")) + ".")
        out.append("")
        out.append("★ marks the Pareto front of file size against mean KLD (no other row is both smaller and closer to the fp32 model).")
        let front = paretoKeys
        for text in evaluationTexts {
            for runtime in ["fp32", "llamacpp"] {
                let group = rows.filter { $0.evaluation == text.name && $0.runtime == runtime }
                guard !group.isEmpty else { continue }
                out += ["", "## \(text.name), \(runtime) runtime", "",
                        "fp32 baseline PPL \(fixed(text.baselinePerplexity, 3)) on \(text.path).", "",
                        "| " + ComparisonReport.columns.joined(separator: " | ") + " |",
                        "|" + ComparisonReport.columns.map { _ in " --- |" }.joined()]
                for r in group { out.append("| " + cells(r, front: front).joined(separator: " | ") + " |") }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// A self-contained page: the tables, size-vs-KLD scatter charts with the Pareto front, and a
    /// per-layer type map of every mixed scheme. No scripts.
    public var html: String {
        let front = paretoKeys
        var body = ["<h1>Quantization comparison</h1>",
                    "<p>\(escape(modelPath)): \(grouped(parameters)) parameters, sha256 <code>\(escape(modelSHA256))</code>. Quanta \(escape(quantaVersion)). "
                    + "Protocol: " + escape(protocolSettings.map { "\($0.0) \($0.1)" }.joined(separator: ", ")) + ".</p>"]
        for text in evaluationTexts {
            for runtime in ["fp32", "llamacpp"] {
                let group = rows.filter { $0.evaluation == text.name && $0.runtime == runtime }
                guard !group.isEmpty else { continue }
                body.append("<h2>\(escape(text.name)), \(runtime) runtime</h2>")
                body.append(scatter(group, front: front, title: "File size vs mean KLD (\(text.name), \(runtime))"))
                body.append("<table><tr>" + ComparisonReport.columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr>")
                for r in group {
                    body.append("<tr" + (front.contains(r.key) ? " class=\"front\"" : "") + ">" + cells(r, front: front).map { "<td>\(escape($0))</td>" }.joined() + "</tr>")
                }
                body.append("</table>")
            }
        }
        let mixed = Dictionary(grouping: rows.filter { !$0.tensorTypes.isEmpty }) { "\($0.scheme) \($0.calibration)" }
        if !mixed.isEmpty {
            body.append("<h2>Per-layer types of the mixed schemes</h2>")
            for key in mixed.keys.sorted() { body.append(bitMap(mixed[key]![0])) }
        }
        for table in sensitivity {
            body.append("<h2>Sensitivity (\(escape(table.calibration)))</h2>")
            body.append(BarChart(title: "Mean KLD with one tensor quantized (slice of \(table.calibration))", categories: table.tensors,
                                 series: table.candidates.map { ($0.name, $0.kld) }, axisLabel: "mean KLD").svg())
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Quanta report</title>
            <style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px;margin:8px 0 24px}
            td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:nth-child(2),td:nth-child(3){text-align:left}
            tr.front{background:#eef6ee}svg{display:block;margin:8px 0}</style></head><body>
            \(body.joined(separator: "\n"))
            </body></html>

            """
    }

    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c755f"]

    /// Size (MB, linear) against mean KLD (log) with one series per calibration set and the front as a line.
    func scatter(_ rows: [Row], front: Set<String>, title: String) -> String {
        let (w, h, left, right, top, bottom) = (760.0, 420.0, 70.0, 170.0, 30.0, 50.0)
        let points = rows.filter { $0.meanKLD > 0 && $0.meanKLD.isFinite }
        guard !points.isEmpty else { return "" }
        let xs = points.map { log10(Double($0.bytes) / 1e6) }, ys = points.map { log10($0.meanKLD) }
        let (x0, x1) = (xs.min()! - 0.02, xs.max()! + 0.02)
        let (y0, y1) = (ys.min()!.rounded(.down), max(ys.max()!.rounded(.up), ys.min()!.rounded(.down) + 1))
        func px(_ mb: Double) -> Double { left + (log10(mb) - x0) / max(x1 - x0, 1e-9) * (w - left - right) }
        func py(_ kld: Double) -> Double { top + (y1 - log10(kld)) / (y1 - y0) * (h - top - bottom) }
        var s = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-size=\"11\" font-family=\"sans-serif\">",
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                 "<text x=\"\(left)\" y=\"18\" font-size=\"13\">\(escape(title))</text>",
                 "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"#333\"/>",
                 "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"#333\"/>",
                 "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 12)\" text-anchor=\"middle\">file size (MB, log scale)</text>",
                 "<text x=\"16\" y=\"\((top + h - bottom) / 2)\" transform=\"rotate(-90 16 \((top + h - bottom) / 2))\" text-anchor=\"middle\">mean KLD (log scale)</text>"]
        var decade = y0
        while decade <= y1 {
            let y = top + (y1 - decade) / (y1 - y0) * (h - top - bottom)
            s.append("<line x1=\"\(left)\" y1=\"\(f(y))\" x2=\"\(w - right)\" y2=\"\(f(y))\" stroke=\"#eee\"/><text x=\"\(left - 6)\" y=\"\(f(y + 4))\" text-anchor=\"end\">1e\(Int(decade))</text>")
            decade += 1
        }
        for i in 0...6 {
            let mb = pow(10, x0 + (x1 - x0) * Double(i) / 6)
            s.append("<line x1=\"\(f(px(mb)))\" y1=\"\(h - bottom)\" x2=\"\(f(px(mb)))\" y2=\"\(h - bottom + 4)\" stroke=\"#333\"/>"
                     + "<text x=\"\(f(px(mb)))\" y=\"\(h - bottom + 16)\" text-anchor=\"middle\">\(fixed(mb, 2))</text>")
        }
        let frontPoints = points.filter { front.contains($0.key) }.sorted { $0.bytes < $1.bytes }
        if frontPoints.count > 1 {
            s.append("<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\" points=\"" + frontPoints.map { "\(f(px(Double($0.bytes) / 1e6))),\(f(py($0.meanKLD)))" }.joined(separator: " ") + "\"/>")
        }
        let series = Array(Set(points.map { $0.calibration })).sorted()
        for (k, name) in series.enumerated() {
            let color = ComparisonReport.palette[k % ComparisonReport.palette.count]
            for r in points where r.calibration == name {
                let (x, y) = (px(Double(r.bytes) / 1e6), py(r.meanKLD))
                s.append("<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(front.contains(r.key) ? 5 : 3.5)\" fill=\"\(color)\" stroke=\"\(front.contains(r.key) ? "#000" : "none")\"><title>\(escape(r.scheme)) \(escape(name)): \(r.bytes) bytes, KLD \(r.meanKLD)</title></circle>")
                if front.contains(r.key) { s.append("<text x=\"\(f(x + 6))\" y=\"\(f(y - 6))\" font-size=\"9\">\(escape(r.scheme))</text>") }
            }
            s.append("<circle cx=\"\(w - right + 20)\" cy=\"\(top + 10 + Double(k) * 18)\" r=\"4\" fill=\"\(color)\"/><text x=\"\(w - right + 30)\" y=\"\(top + 14 + Double(k) * 18)\">\(escape(name.isEmpty ? "no calibration" : name))</text>")
        }
        s.append("<text x=\"\(w - right + 14)\" y=\"\(top + 14 + Double(series.count) * 18 + 8)\">- - Pareto front (★)</text>")
        s.append("</svg>")
        return s.joined(separator: "\n")
    }

    /// Layers × roles, each cell the tensor's type, colored by bits per weight.
    func bitMap(_ row: Row) -> String {
        let roles = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        let layers = Set(row.tensorTypes.keys.compactMap { name -> Int? in
            guard name.hasPrefix("blk.") else { return nil }
            return Int(name.dropFirst(4).prefix { $0.isNumber })
        }).sorted()
        let (cw, ch, left, top) = (70.0, 18.0, 110.0, 40.0)
        let w = left + cw * Double(roles.count) + 20, h = top + ch * Double(layers.count + 2) + 30
        var s = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-size=\"10\" font-family=\"sans-serif\">",
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                 "<text x=\"4\" y=\"16\" font-size=\"12\">\(escape(row.scheme)) (\(escape(row.calibration))): type per tensor, darker = more bits</text>"]
        for (j, role) in roles.enumerated() { s.append("<text x=\"\(f(left + cw * Double(j) + cw / 2))\" y=\"\(top - 6)\" text-anchor=\"middle\">\(role)</text>") }
        func cell(_ x: Double, _ y: Double, _ type: String) -> String {
            let bits = GGMLType(name: type).map { Double($0.byteCount(dimensions: [$0.blockSize]) * 8) / Double($0.blockSize) } ?? 16
            let shade = Int(max(0, min(1, (bits - 2) / 7)) * 180)
            return "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(cw - 2)\" height=\"\(ch - 2)\" fill=\"rgb(\(235 - shade),\(240 - shade),255)\"/>"
                + "<text x=\"\(f(x + cw / 2))\" y=\"\(f(y + 12))\" text-anchor=\"middle\">\(escape(type))</text>"
        }
        for (i, layer) in layers.enumerated() {
            let y = top + ch * Double(i)
            s.append("<text x=\"\(left - 6)\" y=\"\(f(y + 12))\" text-anchor=\"end\">block \(layer)</text>")
            for (j, role) in roles.enumerated() {
                if let type = row.tensorTypes["blk.\(layer).\(role).weight"] { s.append(cell(left + cw * Double(j), y, type)) }
            }
        }
        for (i, name) in ["token_embd.weight", "output.weight"].enumerated() {
            let y = top + ch * Double(layers.count + i) + 6
            s.append("<text x=\"\(left - 6)\" y=\"\(f(y + 12))\" text-anchor=\"end\">\(name.replacingOccurrences(of: ".weight", with: ""))</text>")
            if let type = row.tensorTypes[name] { s.append(cell(left, y, type)) }
        }
        s.append("</svg>")
        return s.joined(separator: "\n")
    }

    func f(_ v: Double) -> String { fixed(v, 1) }

    func scientific(_ v: Double) -> String {
        guard v.isFinite else { return "—" }
        guard v > 0 else { return "0" }
        let e = Int(log10(v).rounded(.down))
        let scale = pow(10, Double(e))
        guard scale.isNormal else { return "\(v)" }  // subnormal values: 10^e itself underflows
        return "\(fixed(v / scale, 3))e\(e)"
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
