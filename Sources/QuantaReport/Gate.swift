import Foundation
import QuantaCore

/// Thresholds of `quanta gate`; nil checks are not run.
public struct GateThresholds: Sendable {
    /// Largest allowed ΔPPL / baseline PPL (0.02 = 2%).
    public var maxPerplexityIncrease: Double?
    public var maxKLD: Double?
    /// Smallest allowed same-top-token fraction (0.9 = 90%).
    public var minSameTop: Double?
    /// Largest allowed growth of a row's mean KLD over the baseline report's (0.05 = 5%).
    public var maxRegression: Double?

    public init() {}

    /// Parses `2%` or `0.02` as a fraction; nil when malformed or negative.
    public static func fraction(_ text: String) -> Double? {
        let value = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
        guard let value, value.isFinite, value >= 0 else { return nil }
        return value
    }
}

/// One check on one row.
public struct GateCheck: Sendable, Equatable {
    public let row: String
    /// max-ppl-increase, max-kld, min-same-top, max-regression.
    public let check: String
    public let passed: Bool
    public let detail: String
}

/// The checks of a report against thresholds (and an earlier report).
public enum Gate {
    public static func evaluate(_ report: ComparisonReport, schemes: [String], thresholds t: GateThresholds,
                                baseline: ComparisonReport?) -> [GateCheck] {
        let rows = report.rows.filter { schemes.isEmpty || schemes.contains($0.scheme) }
        let base = Dictionary(report.evaluationTexts.map { ($0.name, $0.baselinePerplexity) }, uniquingKeysWith: { a, _ in a })
        var checks: [GateCheck] = []
        func percent(_ v: Double) -> String { fixed(v * 100, 3) + "%" }
        for r in rows {
            if let limit = t.maxPerplexityIncrease {
                let increase = r.deltaPerplexity / (base[r.evaluation] ?? .nan)
                checks.append(GateCheck(row: r.label, check: "max-ppl-increase", passed: increase.isFinite && increase <= limit,
                                        detail: "PPL +\(percent(increase)) (limit \(percent(limit)))"))
            }
            if let limit = t.maxKLD {
                checks.append(GateCheck(row: r.label, check: "max-kld", passed: r.meanKLD.isFinite && r.meanKLD <= limit,
                                        detail: "mean KLD \(r.meanKLD) (limit \(limit))"))
            }
            if let limit = t.minSameTop {
                let same = r.sameTopPercent / 100
                checks.append(GateCheck(row: r.label, check: "min-same-top", passed: same.isFinite && same >= limit,
                                        detail: "same top \(percent(same)) (limit \(percent(limit)))"))
            }
        }
        if let baseline, let limit = t.maxRegression {
            let now = Dictionary(rows.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for old in baseline.rows where schemes.isEmpty || schemes.contains(old.scheme) {
                guard let new = now[old.key] else {
                    checks.append(GateCheck(row: old.label, check: "max-regression", passed: false, detail: "missing from the new report"))
                    continue
                }
                let growth = new.meanKLD / old.meanKLD - 1
                let ok = new.meanKLD.isFinite && (new.meanKLD <= old.meanKLD * (1 + limit) || old.meanKLD == 0 && new.meanKLD == 0)
                checks.append(GateCheck(row: old.label, check: "max-regression", passed: ok,
                                        detail: "mean KLD \(new.meanKLD) vs \(old.meanKLD) (\(growth >= 0 ? "+" : "")\(percent(growth)), limit +\(percent(limit)))"))
            }
        }
        return checks
    }

    /// A Markdown summary: the verdict, then one line per check.
    public static func markdown(_ checks: [GateCheck], report: String) -> String {
        let failed = checks.filter { !$0.passed }.count
        var lines = ["### quanta gate: \(failed == 0 ? "passed" : "FAILED") (\(checks.count - failed) of \(checks.count) checks hold) on \(report)", "",
                     "| | row | check | detail |", "| --- | --- | --- | --- |"]
        for c in checks { lines.append("| \(c.passed ? "✅" : "❌") | \(c.row) | \(c.check) | \(c.detail) |") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// JUnit XML: one testsuite, one testcase per row and check.
    public static func junit(_ checks: [GateCheck]) -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failed = checks.filter { !$0.passed }.count
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                     "<testsuites name=\"quanta gate\" tests=\"\(checks.count)\" failures=\"\(failed)\">",
                     "  <testsuite name=\"quanta gate\" tests=\"\(checks.count)\" failures=\"\(failed)\">"]
        for c in checks {
            let open = "    <testcase classname=\"\(escape(c.row))\" name=\"\(escape(c.check))\""
            lines.append(c.passed ? open + "/>" : open + ">\n      <failure message=\"\(escape(c.detail))\"/>\n    </testcase>")
        }
        lines += ["  </testsuite>", "</testsuites>"]
        return lines.joined(separator: "\n") + "\n"
    }
}
