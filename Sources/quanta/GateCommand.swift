import ArgumentParser
import QuantaCore
import QuantaIO
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// `quanta gate REPORT.json`: fail a CI build when drift passes a threshold.
struct GateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Check a comparison report against thresholds; exit 1 when a check fails.",
        discussion: """
            Every row of the report (or of the --scheme ones) is checked against each threshold given; with \
            --baseline, every row of the older report must still be there with a mean KLD at most --max-regression \
            above its old value. Percentages are written 2% or 0.02. A Markdown summary goes to stdout and is appended \
            to $GITHUB_STEP_SUMMARY when that is set; --junit writes one testcase per row and check. Exit codes: \
            0 every check holds, 1 one fails, 64 bad thresholds or arguments, 65 a malformed report, 66 a missing file.
            """
    )

    @Argument(help: "report.json written by quanta compare.") var report: String
    @Option(help: "Check only this scheme's rows (repeatable).") var scheme: [String] = []
    @Option(name: .customLong("max-ppl-increase"), help: "Largest perplexity increase over the fp32 baseline (2% or 0.02).") var maxPPLIncrease: String?
    @Option(name: .customLong("max-kld"), help: "Largest mean KLD.") var maxKLD: Double?
    @Option(name: .customLong("min-same-top"), help: "Smallest same-top-token rate (0.9 or 90%).") var minSameTop: String?
    @Option(help: "An earlier report.json to compare with (with --max-regression).") var baseline: String?
    @Option(name: .customLong("max-regression"), help: "Largest growth of a row's mean KLD over --baseline (5% or 0.05).") var maxRegression: String?
    @Option(help: "Write JUnit XML here.") var junit: String?
    @Option(help: "Also write the Markdown summary here.") var summary: String?

    func thresholds() throws -> GateThresholds {
        var t = GateThresholds()
        func parse(_ text: String?, _ flag: String) throws -> Double? {
            guard let text else { return nil }
            guard let value = GateThresholds.fraction(text) else { throw ValidationError("\(flag) '\(text)' must be a non-negative number or percentage") }
            return value
        }
        t.maxPerplexityIncrease = try parse(maxPPLIncrease, "--max-ppl-increase")
        t.minSameTop = try parse(minSameTop, "--min-same-top")
        t.maxRegression = try parse(maxRegression, "--max-regression")
        if let maxKLD {
            guard maxKLD.isFinite && maxKLD >= 0 else { throw ValidationError("--max-kld must be a non-negative number") }
            t.maxKLD = maxKLD
        }
        if let minSameTop = t.minSameTop, minSameTop > 1 { throw ValidationError("--min-same-top must be at most 1 (100%)") }
        return t
    }

    func validate() throws {
        let t = try thresholds()
        guard t.maxPerplexityIncrease != nil || t.maxKLD != nil || t.minSameTop != nil || t.maxRegression != nil else {
            throw ValidationError("give at least one threshold (--max-ppl-increase, --max-kld, --min-same-top, --max-regression)")
        }
        guard (baseline == nil) == (maxRegression == nil) else { throw ValidationError("--baseline and --max-regression go together") }
    }

    func run() throws {
        var failed = false
        try reportingFailures {
            let current = try ComparisonReport.read(report)
            let old = try baseline.map { try ComparisonReport.read($0) }
            for name in scheme where !current.rows.contains(where: { $0.scheme == name }) {
                throw QuantaError(.invalidArgument, report, "has no row of scheme '\(name)'")
            }
            let checks = Gate.evaluate(current, schemes: scheme, thresholds: try thresholds(), baseline: old)
            guard !checks.isEmpty else { throw QuantaError(.invalidArgument, report, "has no rows to check") }
            let markdown = Gate.markdown(checks, report: report)
            print(markdown, terminator: "")
            for path in [summary, getenv("GITHUB_STEP_SUMMARY").map { String(cString: $0) }].compactMap({ $0 }) {
                guard let file = fopen(path, path == summary ? "w" : "a") else { throw QuantaError(.io, path, "cannot open for writing") }
                fputs(markdown, file)
                fclose(file)
            }
            if let junit {
                let writer = try AtomicFileWriter(path: junit)
                try writer.write(Array(Gate.junit(checks).utf8))
                try writer.commit()
            }
            failed = checks.contains { !$0.passed }
        }
        if failed { throw ExitCode(1) }
    }
}
