import ArgumentParser
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// `quanta sensitivity MODEL --stats stats.h5`: how much each tensor's quantization costs.
struct Sensitivity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "Measure each tensor's sensitivity to every candidate quantization.",
        discussion: """
            For each quantizable tensor and candidate, the model is run on a slice of text with that tensor \
            alone quantized (everything else fp32; the fp32 activations up to its block are reused) and the \
            mean KL divergence from the fp32 model is recorded, with llama-perplexity's scoring (second half \
            of each chunk). The proxy trace(dW H dW^T)/tokens comes from the statistics' Gram matrices, and its \
            Spearman correlation with the measured KLD is reported per candidate. The slice is the statistics' \
            calibration text unless --eval names another: never the text a result will be judged on. With \
            --out the table is cached: a later run with the same model, slice and importance measures only \
            the candidates missing from it.
            """
    )

    @Argument(help: "Model folder or GGUF file (fp32/f16/bf16).") var model: String
    @Option(help: "Statistics from `quanta calibrate` (importance matrix; with --hessian full, the proxy and +gptq candidates).") var stats: String?
    @Option(help: "Importance matrix (llama-imatrix GGUF or .dat) instead of --stats.") var imatrix: String?
    @Option(help: "Text for the slice (default: the statistics' calibration text).") var eval: String?
    @Option(help: "Comma-separated candidates: GGUF types (rounded with the importance matrix), TYPE+gptq (GPTQ through the blocks, needs --stats with Gram matrices), TYPE+awq (rounded in the model AWQ makes for the type, needs --stats), integer grids wBgG[:asym] and wBgG+gptq (decoder linears only).")
    var candidates: String = SensitivityCandidate.defaults.map(\.description).joined(separator: ",")
    @Option(help: "Tokens per chunk of the slice.") var ctx: Int = 256
    @Option(help: "Chunks in the slice.") var chunks: Int = 8
    @Option(name: .customLong("add-bos"), help: "BOS at the start of each chunk: auto follows the model's tokenizer.") var addBOS: Eval.BOS = .auto
    @Option(help: "Sensitivity table (HDF5): read when it exists and matches, written with what was added.") var out: String?
    @Option(help: "Bar chart of the measured KLD per tensor (SVG).") var svg: String?
    @Option(help: "Worker threads (the numbers do not depend on it).") var threads: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    @Flag(help: "Print the table as JSON.") var json = false

    func validate() throws {
        guard imatrix == nil || stats == nil else { throw ValidationError("give --stats or --imatrix, not both") }
        guard stats != nil || eval != nil else { throw ValidationError("give --eval TEXT (or --stats, whose calibration text is then the slice)") }
        guard ctx >= 4, chunks >= 1, threads >= 1 else { throw ValidationError("--ctx must be at least 4, --chunks and --threads at least 1") }
        _ = try SensitivityCandidate.list(candidates)
    }

    func run() throws {
        try reportingFailures {
            let source = try openModelSource(model)
            let statistics = try stats.map { try StatisticsFile(path: $0) }
            try statistics?.check(against: source)
            let importance = try statistics.map { $0.importanceMatrix(config: source.config) } ?? imatrix.map { try ImportanceMatrix.read($0) }
            let slice = try SensitivitySlice(source: source, statistics: statistics, text: eval, context: ctx, chunks: chunks, addBOS: addBOS,
                                             importance: importance)
            let wanted = try SensitivityCandidate.list(candidates)
            let cached = try out.flatMap { FileSystem.kind(of: $0) == .file ? try SensitivityTable.read($0) : nil }
            let analysis = try SensitivityAnalysis(source: source, importance: importance, statistics: statistics, threads: threads)
            if let statistics, wanted.contains(where: { $0.method == .awq }) {
                analysis.awq = (try statistics.provenance.replay(tokenizer: try source.tokenizer(), statisticsPath: statistics.path), AWQOptions())
            }
            let bar = ProgressBar(enabled: !json, verbose: false)
            let start = monotonicSeconds()
            let table = try analysis.run(chunks: slice.chunks, firstScored: ctx / 2, candidates: wanted, key: slice.key, reuse: cached) { done, total in
                bar.update(done, of: total, "tensor x candidate")
            }
            bar.finish()
            if let out { try table.write(out) }
            let weighted = try analysis.gramWeighted()
            let shown = wanted.map(\.description)
            if let svg {
                let chart = BarChart(title: "Sensitivity of \(model)", categories: table.tensors,
                                     series: shown.map { ($0, table.kld[$0]!) }, axisLabel: "mean KLD with the tensor alone quantized")
                let writer = try AtomicFileWriter(path: svg)
                try writer.write(Array(chart.svg().utf8))
                try writer.commit()
            }
            let seconds = monotonicSeconds() - start
            if json {
                print(SensitivityReport.json(table, candidates: shown, weighted: weighted, slice: slice, seconds: seconds).serialized(indent: 2))
            } else {
                print(SensitivityReport.text(table, candidates: shown, weighted: weighted, slice: slice, seconds: seconds))
            }
        }
    }
}

extension SensitivityCandidate {
    /// A comma-separated `--candidates` list, refusing the first name that is not a candidate.
    static func list(_ text: String) throws -> [SensitivityCandidate] {
        try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { name in
            guard let candidate = SensitivityCandidate(name: name) else {
                throw ValidationError("--candidates: '\(name)' is not a type Quanta writes (e.g. Q4_K), a grid (w4g128, w3g64:asym) or either with +gptq")
            }
            return candidate
        }
    }
}

/// The text a sensitivity run measures on, cut into chunks, and the cache key it implies.
struct SensitivitySlice {
    let path: String
    let chunks: [[Int32]]
    let key: SensitivityKey
    let addBOS: Bool

    init(source: ModelSource, statistics: StatisticsFile?, text: String?, context: Int, chunks: Int, addBOS: Eval.BOS,
         importance: ImportanceMatrix?) throws {
        let path = text ?? statistics!.provenance.dataPath
        let data: CalibrationData
        do {
            data = try CalibrationData(path: path)
        } catch let error as QuantaError where text == nil {
            throw error.within("the calibration text named by \(statistics!.path) (give --eval TEXT)")
        }
        let tokenizer = try source.tokenizer()
        let bos = addBOS == .auto ? tokenizer.addBOS : addBOS == .yes
        self.path = path
        self.addBOS = bos
        self.chunks = try CalibrationSampler.sequential(context: context, chunks: chunks)
            .sequences(data, tokenizer: tokenizer, bos: bos ? tokenizer.bosID : nil)
        guard self.chunks.count == chunks else {
            throw QuantaError(.invalidArgument, path, "holds \(self.chunks.count) chunks of \(context) tokens, \(chunks) were asked for")
        }
        key = SensitivityKey(modelSHA256: try statistics?.provenance.modelSHA256 ?? weightsSHA256(source), dataSHA256: data.sha256,
                             importanceSHA256: importance?.fingerprint ?? "", context: context, chunks: chunks, addBOS: bos)
    }
}

/// The sensitivity table as text or JSON.
enum SensitivityReport {
    static func text(_ table: SensitivityTable, candidates: [String], weighted: Set<String>, slice: SensitivitySlice, seconds: Double) -> String {
        var lines = ["mean KLD with one tensor quantized; slice: \(slice.chunks.count) chunks of \(slice.key.context) tokens of \(slice.path) (BOS \(slice.addBOS ? "on" : "off")), \(fixed(seconds, 1)) s",
                     "tensor".padded(28) + candidates.map { $0.leftPadded(11) }.joined()]
        for (t, name) in table.tensors.enumerated() {
            lines.append(name.padded(28) + candidates.map { c in
                let v = table.kld[c]![t]
                return (v.isFinite ? scientific(v) : "-").leftPadded(11)
            }.joined())
        }
        lines.append("Spearman(proxy, KLD)".padded(28) + candidates.map { c in
            (table.spearman(c, weighted: weighted).map { fixed($0, 3) } ?? "-").leftPadded(11)
        }.joined())
        return lines.joined(separator: "\n")
    }

    static func json(_ table: SensitivityTable, candidates: [String], weighted: Set<String>, slice: SensitivitySlice, seconds: Double) -> JSONValue {
        func number(_ v: Double) -> JSONValue { v.isFinite ? .number(v) : .null }
        let tensors: [JSONValue] = table.tensors.enumerated().map { t, name in
            .object([("name", .string(name)),
                     ("kld", .object(candidates.map { ($0, number(table.kld[$0]![t])) })),
                     ("proxy", .object(candidates.map { ($0, number(table.proxy[$0]![t])) }))])
        }
        return .object([
            ("slice", .object([("text", .string(slice.path)), ("ctx", .integer(Int64(slice.key.context))),
                               ("chunks", .integer(Int64(slice.key.chunks))), ("add_bos", .bool(slice.addBOS))])),
            ("candidates", .array(candidates.map { .string($0) })),
            ("tensors", .array(tensors)),
            ("spearman", .object(candidates.map { c in (c, table.spearman(c, weighted: weighted).map { .number($0) } ?? .null) })),
            ("seconds", .number((seconds * 1000).rounded() / 1000)),
        ])
    }

    static func scientific(_ v: Double) -> String {
        guard v > 0 else { return fixed(v, 2) }
        let e = Int((log10(v)).rounded(.down))
        let m = v / pow(10, Double(e))
        return "\(fixed(m, 2))e\(e)"
    }
}
