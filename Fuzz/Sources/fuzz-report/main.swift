import FuzzSupport
import QuantaReport

// report.json, read by `quanta gate` and `quanta report --merge`: rows, texts, numbers; then
// every gate check, the gate's Markdown and JUnit output, and the report's Markdown and HTML
// (tables, SVG charts scaled by the numbers read).
var thresholds = GateThresholds()
thresholds.maxPerplexityIncrease = 0.02
thresholds.maxKLD = 0.01
thresholds.minSameTop = 0.9
thresholds.maxRegression = 0.05

fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "report.json")
    guard let report = try? ComparisonReport.read(path) else { return }
    let checks = Gate.evaluate(report, schemes: [], thresholds: thresholds, baseline: report)
    _ = Gate.markdown(checks, report: path)
    _ = Gate.junit(checks)
    _ = try? ComparisonReport.merge([(path, report), ("other.json", report)])
    // What `quanta report --merge` renders from the files it is given.
    _ = report.markdown
    _ = report.html
}
