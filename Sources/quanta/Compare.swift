import ArgumentParser
import QuantaCalibration
import QuantaCore
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// `quanta compare MODEL --schemes LIST --calib FILES --eval FILES`: every scheme on every
/// calibration set, measured on every evaluation text, as one report.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare quantization schemes across calibration sets and evaluation texts; write report.json, report.md and report.html.",
        discussion: """
            Schemes (comma-separated): a GGUF preset or type (Q4_K_M: with the calibration set's importance matrix; \
            rtn:Q4_K_M without), a method into GGUF (gptq:Q4_K, awq:Q4_K_M, awq+gptq:Q4_K), an integer grid in a \
            GPTQModel folder (rtn:w4g128, gptq:w4g128[:act-order][:asym], awq:w4g128, awq+gptq:w3g128), a mixed \
            budget (mixed:4.5bpw, mixed:Q4_K_M-size) or a recipe (recipe:FILE); SCHEME@SET runs a calibrated scheme on \
            that calibration set only (a set is named by its file name without extension). Each unit of work is the `quanta` \
            command a user would run, started as a child process (its time and peak memory are its own): one \
            calibration pass per calibration set (statistics with Gram matrices, reused by every scheme), one set of \
            fp32 baseline logits per evaluation text, then per scheme and set a quantize and an eval per text and \
            runtime (fp32 and llamacpp for GGUF files, fp32 for folders). --plan writes the units with their \
            command lines; --shard I/N runs every N-th unit from I into a partial report that `quanta report merge` joins.
            """
    )

    @Argument(help: "Model folder (fp32/f16/bf16).") var model: String
    @Option(help: "Comma-separated schemes.") var schemes: String
    @Option(help: "Comma-separated calibration texts (none: calibration-free schemes only).") var calib: String?
    @Option(help: "Comma-separated evaluation texts.") var eval: String
    @Option(help: "Evaluation: tokens per chunk.") var ctx: Int = 256
    @Option(help: "Evaluation: chunks per text (default: all).") var chunks: Int?
    @Option(name: .customLong("add-bos"), help: "Evaluation: BOS at the start of each chunk.") var addBOS: Eval.BOS = .auto
    @Option(help: "Calibration: random windows per set.") var samples: Int = 128
    @Option(name: .customLong("seq-len"), help: "Calibration: tokens per window.") var seqLen: Int = 256
    @Option(help: "Calibration: seed of the windows.") var seed: UInt64 = 0
    @Option(help: "Comma-separated runtimes for GGUF outputs (fp32, llamacpp).") var runtimes: String = "fp32,llamacpp"
    @Option(help: "Report folder (report.json, report.md, report.html).") var out: String?
    @Option(help: "Folder for statistics, baselines and outputs (default: a temporary folder, removed at the end).") var work: String?
    @Option(help: "Write the units of work and their commands to this JSON file, run nothing.") var plan: String?
    @Option(name: .customLong("sensitivity-cache"), help: "Folder keeping mixed schemes' sensitivity tables (sensitivity-SET.h5) across runs; a table is reused when it was measured on the same weights, text and importance.")
    var sensitivityCache: String?
    @Option(help: "Run shard I of N (I from 0); `auto/N` takes I from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.") var shard: String?
    @Flag(help: "Print report.json on stdout.") var json = false

    func validate() throws {
        guard ctx >= 4, samples >= 1, seqLen >= 2 else { throw ValidationError("--ctx must be at least 4, --samples 1, --seq-len 2") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1") }
        guard out != nil || json || plan != nil else { throw ValidationError("give --out DIR, --json or --plan FILE") }
        for r in runtimeList where r != "fp32" && r != "llamacpp" { throw ValidationError("--runtimes: '\(r)' is not fp32 or llamacpp") }
        if shard != nil { _ = try shardIndex() }
        if let sensitivityCache, FileSystem.kind(of: sensitivityCache) != .folder {
            throw ValidationError("--sensitivity-cache \(sensitivityCache) is not a folder")
        }
    }

    var runtimeList: [String] { runtimes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    /// (index, count) of `--shard`, or nil.
    func shardIndex() throws -> (Int, Int)? {
        guard let shard else { return nil }
        let parts = shard.split(separator: "/").map(String.init)
        guard parts.count == 2, let n = Int(parts[1]), n >= 1 else { throw ValidationError("--shard must be I/N or auto/N") }
        var index = Int(parts[0])
        if parts[0] == "auto" {
            let names = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
            let env = names.compactMap { (name: String) -> String? in getenv(name).map { String(cString: $0) } }.first
            guard let env, let i = Int(env) else { throw ValidationError("--shard auto/N needs SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX") }
            index = i
        }
        guard let index, index >= 0, index < n else { throw ValidationError("--shard: the index must be in 0..<\(n)") }
        return (index, n)
    }

    struct Unit {
        let spec: SchemeSpec
        /// Index into the calibration sets, nil when calibration-free.
        let calibration: Int?
    }

    static func inputs(_ list: String?) throws -> [(name: String, path: String)] {
        let paths = (list ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let named = paths.map { path -> (String, String) in
            let base = path.split(separator: "/").last.map(String.init) ?? path
            return (base.split(separator: ".").first.map(String.init) ?? base, path)
        }
        for (i, a) in named.enumerated() where named[..<i].contains(where: { $0.0 == a.0 }) {
            throw QuantaError(.invalidArgument, a.1, "has the same name '\(a.0)' as another input; rename one")
        }
        return named
    }

    /// Units in the schemes' order; `SCHEME@SET` runs a calibrated scheme on that set only.
    func units(_ specs: [(spec: SchemeSpec, only: String?)], calibrations names: [String]) throws -> [Unit] {
        let calibrations = names.count
        var units: [Unit] = []
        for (spec, only) in specs {
            if let only {
                guard spec.calibrated, let index = names.firstIndex(of: only) else {
                    throw QuantaError(.invalidArgument, "scheme '\(spec.name)@\(only)'", "names no calibration set of a calibrated scheme (sets: \(names.joined(separator: ", ")))")
                }
                units.append(Unit(spec: spec, calibration: index))
            } else if !spec.calibrated {
                units.append(Unit(spec: spec, calibration: nil))
            } else if calibrations == 0 {
                guard let plain = spec.withoutCalibration else {
                    throw QuantaError(.invalidArgument, "scheme '\(spec.name)'", "needs a calibration set (--calib)")
                }
                units.append(Unit(spec: plain, calibration: nil))
            } else {
                units += (0..<calibrations).map { Unit(spec: spec, calibration: $0) }
            }
        }
        return units
    }

    func run() throws {
        try reportingFailures {
            let specs = try schemes.split(separator: ",").map { item -> (SchemeSpec, String?) in
                let parts = item.trimmingCharacters(in: .whitespaces).split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                return (try SchemeSpec.parse(parts[0]), parts.count == 2 ? parts[1] : nil)
            }
            guard !specs.isEmpty else { throw QuantaError(.invalidArgument, "--schemes", "names no scheme") }
            let calibrations = try Compare.inputs(calib), evaluations = try Compare.inputs(eval)
            guard !evaluations.isEmpty else { throw QuantaError(.invalidArgument, "--eval", "names no text") }
            let all = try units(specs, calibrations: calibrations.map(\.name))
            if let plan { return try writePlan(all, calibrations: calibrations, evaluations: evaluations, to: plan) }
            let selected = try shardIndex().map { s in all.enumerated().filter { $0.offset % s.1 == s.0 }.map(\.element) } ?? all
            let scratch = try work ?? FileSystem.temporaryFolder(prefix: "quanta-compare")
            try FileSystem.createFolder(scratch)
            defer { if work == nil { try? FileSystem.remove(scratch) } }
            var runner = CompareRunner(command: self, scratch: scratch, calibrations: calibrations, evaluations: evaluations, units: all)
            let report = try runner.run(selected)
            if let out { try report.write(to: out) }
            if json { print(report.json.serialized(indent: 2)) } else if let out {
                print("wrote \(FileSystem.join(out, "report.json")), report.md and report.html: \(report.rows.count) rows")
            }
        }
    }

    /// The units of work as JSON: each with the commands that run it (`{work}` is the shared folder).
    func writePlan(_ units: [Unit], calibrations: [(name: String, path: String)], evaluations: [(name: String, path: String)], to path: String) throws {
        let base = CommandLine.arguments.dropFirst().filter { $0 != "--plan" && $0 != path }
        let jobs: [JSONValue] = units.enumerated().map { i, unit in
            .object([("index", .integer(Int64(i))), ("scheme", .string(unit.spec.name)),
                     ("calibration", .string(unit.calibration.map { calibrations[$0].name } ?? "")),
                     ("command", .array((["quanta"] + base + ["--shard", "\(i)/\(units.count)", "--out", "{work}/part-\(i)"]).map { .string($0) }))])
        }
        let plan = JSONValue.object([("units", .integer(Int64(units.count))), ("jobs", .array(jobs)),
                                     ("merge", .array(["quanta", "report", "merge"].map { .string($0) } + [.string("{work}/part-*/report.json"), .string("--out"), .string("REPORT_DIR")]))])
        let writer = try AtomicFileWriter(path: path)
        try writer.write(Array((plan.serialized(indent: 2) + "\n").utf8))
        try writer.commit()
        print("wrote \(path): \(units.count) units")
    }
}
