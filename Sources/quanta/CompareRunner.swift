import QuantaCalibration
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// Runs the units of a comparison as child `quanta` processes and gathers the report.
struct CompareRunner {
    let command: Compare
    let scratch: String
    let calibrations: [(name: String, path: String)]
    let evaluations: [(name: String, path: String)]
    /// Every unit of the comparison (the shard's are a subset); the report lists all schemes.
    let units: [Compare.Unit]
    private var statistics: [Int: String] = [:]
    private var baselines: [String] = []
    private var presetSizes: [String: Int] = [:]
    private var modelParameters = 0
    /// A rewriting line on a terminal; one line per step in a log (CI), so long runs show where they are.
    private let bar = ProgressBar(enabled: true, verbose: isatty(2) == 0)
    private var started = 0.0

    init(command: Compare, scratch: String, calibrations: [(name: String, path: String)], evaluations: [(name: String, path: String)],
         units: [Compare.Unit]) {
        self.command = command
        self.scratch = scratch
        self.calibrations = calibrations
        self.evaluations = evaluations
        self.units = units
    }

    var bos: String { command.addBOS.rawValue }
    var protocolArguments: [String] { ["--ctx", String(command.ctx)] + (command.chunks.map { ["--chunks", String($0)] } ?? []) + ["--add-bos", bos] }

    mutating func progress(_ done: Int, _ total: Int, _ label: String) {
        let elapsed = monotonicSeconds() - started
        let eta = done > 0 ? " ETA \(Int(elapsed / Double(done) * Double(total - done)))s" : ""
        bar.update(done, of: total, label + eta)
    }

    mutating func run(_ selected: [Compare.Unit]) throws -> ComparisonReport {
        started = monotonicSeconds()
        let source = try openModelSource(command.model)
        var report = ComparisonReport()
        report.environment = environment()
        report.modelPath = command.model
        report.modelSHA256 = try weightsSHA256(source)
        report.parameters = source.tensors.reduce(0) { $0 + $1.elementCount }
        modelParameters = report.parameters
        report.protocolSettings = [("ctx", command.ctx), ("chunks", command.chunks ?? 0), ("add_bos", ["auto": -1, "no": 0, "yes": 1][bos]!),
                                   ("samples", command.samples), ("seq_len", command.seqLen), ("seed", Int(command.seed))]
        for c in calibrations { report.calibrationSets.append(.init(name: c.name, path: c.path, sha256: try CalibrationData(path: c.path).sha256)) }
        let steps = evaluations.count + Set(selected.compactMap(\.calibration)).count + selected.count
        var done = 0
        for (i, e) in evaluations.enumerated() {
            progress(done, steps, "baseline logits: \(e.name)")
            let path = FileSystem.join(scratch, "baseline-\(i).h5")
            try? FileSystem.remove(path)
            let (json, _) = try Subprocess.quantaJSON(["eval", command.model, "--text", e.path] + protocolArguments + ["--save-logits", path, "--json"],
                                                      scratch: scratch, what: "baseline of \(e.path)")
            var input = ComparisonReport.Input(name: e.name, path: e.path, sha256: try CalibrationData(path: e.path).sha256)
            input.baselinePerplexity = json["perplexity"]?.doubleValue ?? .nan
            report.evaluationTexts.append(input)
            baselines.append(path)
            done += 1
        }
        for unit in units {
            let calibration = unit.calibration.map { calibrations[$0].name } ?? ""
            report.schemes.append(.init(name: unit.spec.name, method: unit.spec.method, format: unit.spec.format, arguments: unit.spec.arguments,
                                        calibration: calibration))
        }
        for unit in selected {
            if let c = unit.calibration, statistics[c] == nil {
                progress(done, steps, "calibration: \(calibrations[c].name)")
                let path = FileSystem.join(scratch, "stats-\(c).h5")
                try? FileSystem.remove(path)
                _ = try Subprocess.quantaJSON(["calibrate", command.model, "--data", calibrations[c].path, "--samples", String(command.samples),
                                               "--seq-len", String(command.seqLen), "--seed", String(command.seed), "--out", path, "--json"],
                                              scratch: scratch, what: "calibration on \(calibrations[c].path)")
                statistics[c] = path
                done += 1
            }
            progress(done, steps, "\(unit.spec.name)" + (unit.calibration.map { " (\(calibrations[$0].name))" } ?? ""))
            let (rows, recipe) = try measure(unit)
            report.rows += rows
            if let k = report.schemes.firstIndex(where: { $0.name == unit.spec.name && $0.calibration == (rows.first?.calibration ?? "") }) {
                report.schemes[k].recipe = recipe
            }
            done += 1
        }
        for (c, calibration) in calibrations.enumerated() {
            let path = sensitivityPath(c)
            guard FileSystem.kind(of: path) == .file else { continue }
            let table = try SensitivityTable.read(path)
            report.sensitivity.append(.init(calibration: calibration.name, tensors: table.tensors,
                                            candidates: table.candidates.map { ($0, table.kld[$0]!) }))
        }
        progress(steps, steps, "done")
        bar.finish()
        report.sortRows()
        return report
    }

    /// The sensitivity table of calibration set `c`: in `--sensitivity-cache` (kept across runs,
    /// reused when it matches the weights, text and importance) or in the scratch folder.
    func sensitivityPath(_ c: Int) -> String {
        guard let cache = command.sensitivityCache, calibrations.indices.contains(c) else { return FileSystem.join(scratch, "sensitivity-\(c).h5") }
        return FileSystem.join(cache, "sensitivity-\(calibrations[c].name).h5")
    }

    /// Quantizes one unit and evaluates the output on every text and runtime.
    mutating func measure(_ unit: Compare.Unit) throws -> ([ComparisonReport.Row], String) {
        let spec = unit.spec
        let calibration = unit.calibration.map { calibrations[$0].name } ?? ""
        let stats = unit.calibration.flatMap { statistics[$0] } ?? ""
        let safeName = (spec.name + (calibration.isEmpty ? "" : "-" + calibration)).map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        let output = FileSystem.join(scratch, String(safeName) + (spec.format == "gguf" ? ".gguf" : ""))
        try? FileSystem.remove(output)
        defer { try? FileSystem.remove(output) }
        var arguments: [String] = []
        for argument in spec.arguments {
            switch argument {
            case "{stats}": arguments.append(stats)
            case "{sensitivity}": arguments.append(sensitivityPath(unit.calibration ?? -1))
            case "{size}": arguments.append(String(try presetSize(spec.sizeOf!, stats: stats)))
            default: arguments.append(argument)
            }
        }
        let (quantized, run) = try Subprocess.quantaJSON(["quantize", command.model, output] + arguments + ["--json"], scratch: scratch,
                                                         what: "scheme \(spec.name)")
        let bytes = try FileSystem.size(output)
        let parameters = quantized["parameter_count"]?.intValue
        var bitsPerWeight = quantized["bits_per_weight"]?.doubleValue ?? 0
        if spec.format != "gguf" {
            let weights = try FileSystem.contents(of: output).filter { $0.hasSuffix(".safetensors") }.reduce(0) { $0 + (try FileSystem.size(FileSystem.join(output, $1))) }
            bitsPerWeight = Double(weights * 8) / Double(max(parameters ?? modelParameters, 1))
        }
        var types: [String: String] = [:]
        if spec.method == "mixed" || spec.method == "recipe" {
            for t in quantized["tensors"]?.arrayValue ?? [] {
                if let name = t["name"]?.stringValue, let to = t["to"]?.stringValue, !name.contains("norm") { types[name] = to }
            }
        }
        var recipe = ""
        if spec.format == "gguf" {
            let (inspected, _) = try Subprocess.quantaJSON(["inspect", output, "--json"], scratch: scratch, what: "inspect \(output)")
            recipe = inspected["metadata"]?["quanta.recipe"]?.stringValue ?? ""
        }
        var rows: [ComparisonReport.Row] = []
        for (i, e) in evaluations.enumerated() {
            for runtime in command.runtimeList where runtime == "fp32" || spec.format == "gguf" {
                let (evaluated, _) = try Subprocess.quantaJSON(["eval", output, "--text", e.path] + protocolArguments
                                                               + ["--baseline-logits", baselines[i], "--runtime", runtime, "--json"],
                                                               scratch: scratch, what: "evaluation of \(spec.name) on \(e.path)")
                var row = ComparisonReport.Row(scheme: spec.name, method: spec.method, format: spec.format, calibration: calibration,
                                               evaluation: e.name, runtime: runtime)
                let d = evaluated["drift"]
                row.bytes = bytes
                row.bitsPerWeight = bitsPerWeight
                row.perplexity = evaluated["perplexity"]?.doubleValue ?? .nan
                row.perplexityError = evaluated["perplexity_error"]?.doubleValue ?? .nan
                row.deltaPerplexity = d?["delta_ppl"]?.doubleValue ?? .nan
                row.meanKLD = d?["mean_kld"]?.doubleValue ?? .nan
                row.meanKLDError = d?["mean_kld_error"]?.doubleValue ?? .nan
                row.medianKLD = d?["median_kld"]?.doubleValue ?? .nan
                row.p99KLD = d?["p99_kld"]?.doubleValue ?? .nan
                row.maxKLD = d?["max_kld"]?.doubleValue ?? .nan
                row.sameTopPercent = d?["same_top_percent"]?.doubleValue ?? .nan
                row.rmsDeltaPPercent = d?["rms_delta_p_percent"]?.doubleValue ?? .nan
                row.quantizeSeconds = (run.seconds * 1000).rounded() / 1000
                row.peakMemoryBytes = run.peakMemoryBytes
                row.tensorTypes = types
                rows.append(row)
            }
        }
        return (rows, recipe)
    }

    /// The file size of a preset with the calibration set's importance matrix (a dry run).
    mutating func presetSize(_ preset: String, stats: String) throws -> Int {
        if let size = presetSizes[preset + stats] { return size }
        let (json, _) = try Subprocess.quantaJSON(["quantize", command.model, FileSystem.join(scratch, "dry.gguf"), preset, "--dry-run", "--json"]
                                                  + (stats.isEmpty ? [] : ["--stats", stats]), scratch: scratch, what: "size of \(preset)")
        guard let size = json["file_bytes"]?.intValue else { throw QuantaError.malformed("size of \(preset)", "the dry run printed no file_bytes") }
        presetSizes[preset + stats] = size
        return size
    }

    func environment() -> [(String, String)] {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String { withUnsafeBytes(of: value) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) } }
        let cpu = (try? FileSystem.read("/proc/cpuinfo")).flatMap { bytes in
            String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("model name") }?
                .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
        } ?? "unknown"
        return [("os", "\(field(name.sysname)) \(field(name.release))"), ("machine", field(name.machine)), ("cpu", cpu),
                ("cores", String(sysconf(Int32(_SC_NPROCESSORS_ONLN)))),
                ("openblas_coretype", getenv("OPENBLAS_CORETYPE").map { String(cString: $0) } ?? "")]
    }
}
