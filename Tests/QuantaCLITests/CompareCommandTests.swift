import QuantaCore
import QuantaIO
import QuantaReport
import TestSupport
import XCTest

/// `quanta compare`, `quanta report merge` and `quanta gate` as CI runs them.
final class CompareCommandTests: XCTestCase {
    func quanta(_ arguments: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> TestSupport.Run {
        try TestSupport.quanta(arguments, environment: environment, file: file, line: line)
    }

    /// A report with two rows, as compare writes it.
    func report(kld: Double, sameTop: Double) -> ComparisonReport {
        var report = ComparisonReport()
        report.modelPath = "Models/austen-llama"
        report.modelSHA256 = "ab"
        report.parameters = 100
        var text = ComparisonReport.Input(name: "novel", path: "novel.txt", sha256: "cd")
        text.baselinePerplexity = 50
        report.evaluationTexts = [text]
        for (scheme, factor) in [("Q4_K_M", 1.0), ("rtn:Q4_0", 2.0)] {
            var row = ComparisonReport.Row(scheme: scheme, method: "rtn", format: "gguf", calibration: scheme == "Q4_K_M" ? "wiki" : "",
                                           evaluation: "novel", runtime: "fp32")
            row.bytes = 1000
            row.meanKLD = kld * factor
            row.sameTopPercent = sameTop
            row.deltaPerplexity = 0.5 * factor
            report.rows.append(row)
        }
        return report
    }

    func write(_ report: ComparisonReport, _ path: String) throws {
        try TestSupport.write(Array(report.json.serialized(indent: 2).utf8), to: path)
    }

    func testGateExitCodesSummaryAndJUnit() throws {
        let folder = try TestSupport.temporaryFolder()
        let path = folder + "/report.json", old = folder + "/old.json", junit = folder + "/junit.xml", summary = folder + "/summary.md"
        try write(report(kld: 0.001, sameTop: 97), path)
        try write(report(kld: 0.00099, sameTop: 97), old)
        var run = try quanta(["gate", path, "--max-kld", "0.0015", "--max-ppl-increase", "1%", "--min-same-top", "0.95",
                              "--baseline", old, "--max-regression", "5%", "--junit", junit, "--summary", summary],
                             environment: ["GITHUB_STEP_SUMMARY": folder + "/step.md"])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stdout.hasPrefix("### quanta gate: FAILED (6 of 8 checks hold) on \(path)\n"), run.stdout)
        XCTAssertTrue(run.stdout.contains("| ❌ | rtn:Q4_0, novel, fp32 | max-kld | mean KLD 0.002 (limit 0.0015) |"), run.stdout)
        XCTAssertTrue(run.stdout.contains("| ❌ | rtn:Q4_0, novel, fp32 | max-ppl-increase | PPL +2.000% (limit 1.000%) |"), run.stdout)
        XCTAssertTrue(run.stdout.contains("| ✅ | Q4_K_M @ wiki, novel, fp32 | max-regression | mean KLD 0.001 vs 0.00099 (+1.010%, limit +5.000%) |"), run.stdout)
        XCTAssertEqual(String(decoding: try FileSystem.read(summary), as: UTF8.self), run.stdout)
        XCTAssertEqual(String(decoding: try FileSystem.read(folder + "/step.md"), as: UTF8.self), run.stdout)
        let parsed = try TestSupport.oracle("""
            import sys, xml.etree.ElementTree as ET
            root = ET.parse(sys.argv[1]).getroot()
            cases = root.findall("./testsuite/testcase")
            print(root.get("tests"), root.get("failures"), len(cases), sum(1 for c in cases if c.find("failure") is not None),
                  "|".join(sorted(set(c.get("name") for c in cases))))
            """, [junit])
        XCTAssertEqual(parsed.trimmingCharacters(in: .whitespacesAndNewlines), "8 2 8 2 max-kld|max-ppl-increase|max-regression|min-same-top")

        run = try quanta(["gate", path, "--scheme", "Q4_K_M", "--max-kld", "0.0015", "--baseline", old, "--max-regression", "5%"])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        run = try quanta(["gate", path, "--baseline", old, "--max-regression", "0.5%"])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stdout.contains("(+1.010%, limit +0.500%)"), run.stdout)

        try TestSupport.write(Array("{\"schema\": \"quanta-report\", \"version\": 1, \"rows\": 3}".utf8), to: folder + "/bad.json")
        run = try quanta(["gate", folder + "/bad.json", "--max-kld", "1"])
        XCTAssertEqual(run.status, 65)
        XCTAssertEqual(run.stderr, "quanta: error: \(folder)/bad.json: rows: must be an array\n")
        try TestSupport.write(Array("{".utf8), to: folder + "/broken.json")
        XCTAssertEqual(try quanta(["gate", folder + "/broken.json", "--max-kld", "1"]).status, 65)
        run = try quanta(["gate", folder + "/missing.json", "--max-kld", "1"])
        XCTAssertEqual(run.status, 66)
        XCTAssertEqual(run.stderr, "quanta: error: \(folder)/missing.json: no such file\n")
        XCTAssertEqual(try quanta(["gate", path, "--max-ppl-increase", "two"]).status, 64)
        XCTAssertEqual(try quanta(["gate", path]).status, 64)
        XCTAssertEqual(try quanta(["gate", path, "--max-regression", "5%"]).status, 64)
        XCTAssertEqual(try quanta(["gate", path, "--min-same-top", "150%"]).status, 64)
    }

    /// Malformed scheme lists are refused with a message before any work; --plan lists the units.
    func testSchemeErrorsAndPlan() throws {
        let folder = try TestSupport.temporaryFolder()
        let base = ["compare", TestSupport.austenModel, "--eval", "novel.txt", "--calib", "a/wiki.txt,b/c4.txt", "--plan", folder + "/jobs.json"]
        for (schemes, message) in [("", "--schemes: names no scheme"), (":", "scheme ':': unknown method '' (rtn, gptq, awq, awq+gptq, mixed, recipe)"),
                                   ("gptq:w4g", "scheme 'gptq:w4g': expected a GGUF type or wBITSgGROUP (w4g128, w3g-1)"),
                                   ("Q4_K_M@web", "scheme 'Q4_K_M@web': names no calibration set of a calibrated scheme (sets: wiki, c4)"),
                                   ("mixed:4.5", "scheme 'mixed:4.5': a mixed budget is NUMBERbpw or PRESET-size (mixed:4.5bpw, mixed:Q4_K_M-size)")] {
            let run = try quanta(base + ["--schemes", schemes])
            XCTAssertEqual(run.status, 64, schemes)
            XCTAssertEqual(run.stderr, "quanta: error: \(message)\n")
        }
        let run = try quanta(base + ["--schemes", "rtn:Q4_0,Q4_K_M,mixed:Q4_K_M-size@c4"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let plan = try JSONParser.parse(try FileSystem.read(folder + "/jobs.json"))
        XCTAssertEqual(plan["units"]?.intValue, 4)
        let jobs = try XCTUnwrap(plan["jobs"]?.arrayValue)
        XCTAssertEqual(jobs.map { "\($0["scheme"]!.stringValue!)@\($0["calibration"]!.stringValue!)" },
                       ["rtn:Q4_0@", "Q4_K_M@wiki", "Q4_K_M@c4", "mixed:Q4_K_M-size@c4"])
        XCTAssertEqual(jobs[2]["command"]?.arrayValue?.suffix(4).compactMap(\.stringValue), ["--shard", "2/4", "--out", "{work}/part-2"])
    }

    /// Three shards merged give the single run's report (timings and peak memory aside).
    func testShardsMergeIntoTheSingleRunReport() throws {
        let folder = try TestSupport.temporaryFolder()
        let common = ["compare", TestSupport.austenModel, "--schemes", "rtn:Q4_0,Q4_K_S,gptq:Q4_K", "--calib", TestSupport.path("Calibration/calib-c4.txt"),
                      "--samples", "8", "--seq-len", "64", "--eval", TestSupport.path("Calibration/austen-persuasion-eval.txt"),
                      "--ctx", "64", "--chunks", "4", "--runtimes", "fp32"]
        var run = try quanta(common + ["--out", folder + "/single"])
        XCTAssertEqual(run.status, 0, run.stderr)
        var parts: [String] = []
        for i in 0..<3 {
            run = try quanta(common + ["--out", folder + "/part-\(i)", "--shard", "\(i)/3"])
            XCTAssertEqual(run.status, 0, run.stderr)
            parts.append(folder + "/part-\(i)/report.json")
        }
        run = try quanta(["report", "merge"] + parts + ["--out", folder + "/merged"])
        XCTAssertEqual(run.status, 0, run.stderr)
        func normalized(_ path: String) throws -> ComparisonReport {
            var report = try ComparisonReport.read(path)
            for i in report.rows.indices { (report.rows[i].quantizeSeconds, report.rows[i].peakMemoryBytes) = (0, 0) }
            return report
        }
        let single = try normalized(folder + "/single/report.json"), merged = try normalized(folder + "/merged/report.json")
        XCTAssertEqual(single.rows.count, 3)
        XCTAssertEqual(single.json.serialized(indent: 2), merged.json.serialized(indent: 2))
        XCTAssertEqual(Set(single.rows.map(\.scheme)), ["rtn:Q4_0", "Q4_K_S", "gptq:Q4_K"])
        let gptq = try XCTUnwrap(single.rows.first { $0.scheme == "gptq:Q4_K" }), plain = try XCTUnwrap(single.rows.first { $0.scheme == "Q4_K_S" })
        XCTAssertEqual(gptq.calibration, "calib-c4")
        XCTAssertGreaterThan(gptq.meanKLD, 0)
        let timed = try XCTUnwrap(try ComparisonReport.read(folder + "/single/report.json").rows.first { $0.scheme == "Q4_K_S" })
        XCTAssertGreaterThan(timed.quantizeSeconds, 0)
        XCTAssertGreaterThan(timed.peakMemoryBytes, 1_000_000)
        XCTAssertEqual(plain.bytes, timed.bytes)
        XCTAssertTrue(single.schemes.first { $0.name == "Q4_K_S" }!.recipe.hasPrefix("# quanta recipe"))
        let md = String(decoding: try FileSystem.read(folder + "/single/report.md"), as: UTF8.self)
        XCTAssertTrue(md.contains("| ★ | rtn:Q4_0 | — | fp32 |"), md)
        let html = String(decoding: try FileSystem.read(folder + "/single/report.html"), as: UTF8.self)
        XCTAssertTrue(html.contains("<svg") && html.contains("mean KLD (log scale)") && !html.contains("<script"))
    }
}
