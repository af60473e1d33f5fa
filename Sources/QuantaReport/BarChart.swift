import Foundation

/// Grouped bar charts as standalone SVG: one group of bars per category (a tensor), one bar
/// per series (a candidate), on a log10 axis, with a legend. Non-finite or non-positive values
/// draw no bar.
public struct BarChart {
    public var title: String
    public var categories: [String]
    public var series: [(name: String, values: [Double])]
    public var axisLabel: String

    public init(title: String, categories: [String], series: [(name: String, values: [Double])], axisLabel: String) {
        self.title = title
        self.categories = categories
        self.series = series
        self.axisLabel = axisLabel
    }

    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    /// The chart, `width` pixels wide; categories run down the page as horizontal bars.
    public func svg(width: Int = 900) -> String {
        let positive = series.flatMap(\.values).filter { $0.isFinite && $0 > 0 }
        let low = (positive.min().map { log10($0).rounded(.down) }) ?? -6
        let high = max(low + 1, (positive.max().map { log10($0).rounded(.up) }) ?? 0)
        let bar = 6, gap = 8, left = 190, right = 20, top = 60
        let groupHeight = max(1, series.count) * bar + gap
        let plotWidth = Double(width - left - right)
        let height = top + categories.count * groupHeight + 40 + 16 * ((series.count + 3) / 4)
        func x(_ v: Double) -> Double { Double(left) + (log10(v) - low) / (high - low) * plotWidth }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"11\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(left)\" y=\"18\" font-size=\"14\">\(escape(title))</text>",
                   "<text x=\"\(left)\" y=\"34\">\(escape(axisLabel)) (log scale)</text>"]
        var decade = low
        while decade <= high {
            let px = x(pow10(decade))
            out.append("<line x1=\"\(f(px))\" y1=\"\(top - 4)\" x2=\"\(f(px))\" y2=\"\(top + categories.count * groupHeight)\" stroke=\"#ddd\"/>")
            out.append("<text x=\"\(f(px))\" y=\"\(top - 6)\" text-anchor=\"middle\">1e\(Int(decade))</text>")
            decade += 1
        }
        for (c, category) in categories.enumerated() {
            let y0 = top + c * groupHeight
            out.append("<text x=\"\(left - 6)\" y=\"\(y0 + groupHeight / 2 + 3)\" text-anchor=\"end\">\(escape(category))</text>")
            for (s, entry) in series.enumerated() where c < entry.values.count {
                let v = entry.values[c]
                guard v.isFinite && v > 0 else { continue }
                let w = max(0.5, x(v) - Double(left))
                out.append("<rect x=\"\(left)\" y=\"\(y0 + s * bar)\" width=\"\(f(w))\" height=\"\(bar - 1)\" fill=\"\(BarChart.palette[s % BarChart.palette.count])\"><title>\(escape(entry.name)) \(v)</title></rect>")
            }
        }
        let legendTop = top + categories.count * groupHeight + 20
        for (s, entry) in series.enumerated() {
            let lx = left + (s % 4) * 160, ly = legendTop + (s / 4) * 16
            out.append("<rect x=\"\(lx)\" y=\"\(ly - 9)\" width=\"10\" height=\"10\" fill=\"\(BarChart.palette[s % BarChart.palette.count])\"/>")
            out.append("<text x=\"\(lx + 14)\" y=\"\(ly)\">\(escape(entry.name))</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    func f(_ v: Double) -> String { fixed(v, 1) }
    func pow10(_ e: Double) -> Double { (0..<Int(abs(e))).reduce(1.0) { r, _ in e < 0 ? r / 10 : r * 10 } }
    func log10(_ v: Double) -> Double { Foundation.log10(v) }
    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
