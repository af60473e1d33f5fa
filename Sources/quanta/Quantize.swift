import ArgumentParser
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// `quanta quantize SRC OUT.gguf TYPE`: llama-quantize's output, from a Hugging Face folder.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model to a GGUF file that llama.cpp runs as it is.",
        discussion: """
            SRC is a Hugging Face folder (fp32/f16/bf16 safetensors; model_type \(ArchitectureRegistry.modelTypes.joined(separator: ", "))) or a GGUF file. TYPE is a \
            preset (\(GGUFPreset.allCases.map(\.rawValue).joined(separator: ", "))); Q3_K, Q4_K and Q5_K \
            mean their _M mixtures. The per-tensor types, fallbacks and bytes are llama-quantize's.
            """
    )

    @Argument(help: "Model folder or GGUF file.") var source: String
    @Argument(help: "Output GGUF file (written atomically).") var output: String
    @Argument(help: "Preset or type (GGUF output).") var type: String?

    @Option(help: "Worker threads (the bytes do not depend on it).") var threads: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    @Option(name: .customLong("tensor-type"), help: ArgumentHelp("Override the type of tensors whose name matches REGEX; the first matching rule wins.", valueName: "REGEX=TYPE"))
    var tensorTypes: [String] = []
    @Option(name: .customLong("output-tensor-type"), help: "Type of output.weight.") var outputTensorType: String?
    @Option(name: .customLong("token-embedding-type"), help: "Type of token_embd.weight.") var tokenEmbeddingType: String?
    @Flag(name: .customLong("leave-output-tensor"), help: "Keep output.weight unquantized.") var leaveOutputTensor = false
    @Flag(help: "Give every quantized tensor the preset's default type (no mixture rules).") var pure = false
    @Option(help: "Importance matrix (llama-imatrix GGUF or legacy .dat).") var imatrix: String?
    @Option(help: "Statistics from `quanta calibrate` (HDF5), used as the importance matrix; refused when made from other weights.") var stats: String?
    @Option(help: "rtn: llama-quantize's rounding (with --imatrix or --stats as importance); gptq: GPTQ's error feedback through the GGUF blocks, with the Gram matrices of --stats.")
    var method: Method = .rtn
    @Option(help: "gguf: a llama.cpp file (TYPE chooses the types). gptq: a GPTQModel/AutoGPTQ checkpoint folder (--bits, --group-size).")
    var format: OutputFormat = .gguf
    @Option(help: "gptq format: bits per weight (2, 3, 4 or 8).") var bits: Int = 4
    @Option(name: .customLong("group-size"), help: "gptq format: input columns per group (-1: one per row).") var groupSize: Int = 128
    @Flag(help: "gptq format: asymmetric grid (zero points per group); symmetric by default, as GPTQModel.") var asym = false
    @Flag(name: .customLong("static-groups"), help: "gptq format: fit every group from the original weights before solving.") var staticGroups = false
    @Flag(help: "gptq format: grid search of each group's clipping range (GPTQModel's mse).") var mse = false
    @Option(help: "gptq: calibration text for a true-sequential run (instead of --stats).") var data: String?
    @Option(help: "gptq with --data: random windows.") var samples: Int = 128
    @Option(name: .customLong("seq-len"), help: "gptq with --data: tokens per window.") var seqLen: Int = 512
    @Option(help: "gptq with --data: seed of the windows.") var seed: UInt64 = 0
    @Flag(name: .customLong("act-order"), help: "gptq: columns by decreasing Hessian diagonal (blocks fitted up front).") var actOrder = false
    @Option(help: "gptq: dampening, a fraction of the Hessian's mean diagonal.") var damp: Double = 0.01
    @Flag(name: .customLong("allow-requantize"), help: "Allow quantizing tensors that are already quantized.") var allowRequantize = false
    @Flag(name: .customLong("dry-run"), help: "Print the per-tensor plan and the final size; write nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Print one line per tensor as it is written (progress goes to a terminal's stderr anyway).") var verbose = false

    func validate() throws {
        if format == .gguf {
            guard let type else { throw ValidationError("give the GGUF preset or type (\(GGUFPreset.allCases.map(\.rawValue).joined(separator: ", ")))") }
            guard GGUFPreset(name: type) != nil else {
                throw ValidationError("unknown type '\(type)'; choose one of \(GGUFPreset.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        } else {
            guard method == .gptq, stats != nil, type == nil else {
                throw ValidationError("--format gptq takes --method gptq --stats FILE and no GGUF type")
            }
            guard [2, 3, 4, 8].contains(bits) else { throw ValidationError("--bits must be 2, 3, 4 or 8 for the gptq layout") }
            guard groupSize == -1 || groupSize > 0 else { throw ValidationError("--group-size must be positive or -1") }
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard imatrix == nil || stats == nil else { throw ValidationError("give --imatrix or --stats, not both") }
        if method == .gptq && (stats == nil) == (data == nil) {
            throw ValidationError("--method gptq needs --stats (from quanta calibrate with --hessian full) or --data (a true-sequential run), one of them")
        }
        if data != nil && method != .gptq { throw ValidationError("--data goes with --method gptq") }
        guard samples >= 1, seqLen >= 2 else { throw ValidationError("--samples must be at least 1 and --seq-len at least 2") }
        guard damp > 0 && damp < 1 else { throw ValidationError("--damp must be between 0 and 1") }
        for rule in tensorTypes {
            let parts = rule.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, GGMLType(name: parts[1]) != nil else {
                throw ValidationError("--tensor-type '\(rule)' must be REGEX=TYPE with a ggml type name")
            }
        }
        for (flag, value) in [("--output-tensor-type", outputTensorType), ("--token-embedding-type", tokenEmbeddingType)] {
            if let value, GGMLType(name: value) == nil { throw ValidationError("\(flag): unknown type '\(value)'") }
        }
    }

    var preset: GGUFPreset { GGUFPreset(name: type ?? "")! }

    func run() throws {
        try reportingFailures {
            if format == .gptq { return try writeCheckpoint() }
            var options = QuantizationOptions()
            options.tensorTypes = tensorTypes.map { rule in
                let parts = rule.split(separator: "=", maxSplits: 1).map(String.init)
                return (parts[0], GGMLType(name: parts[1])!)
            }
            options.outputTensorType = outputTensorType.flatMap { GGMLType(name: $0) }
            options.tokenEmbeddingType = tokenEmbeddingType.flatMap { GGMLType(name: $0) }
            options.leaveOutputTensor = leaveOutputTensor
            options.pure = pure
            let model = try openModelSource(source)
            var matrix = try imatrix.map { try ImportanceMatrix.read($0) }
            var quantizer: TensorQuantizer?
            if let stats {
                let file = try StatisticsFile(path: stats)
                try file.check(against: model)
                let importance = file.importanceMatrix(config: model.config)
                matrix = importance
                if method == .gptq {
                    var solver = GPTQOptions()
                    solver.actOrder = actOrder
                    solver.damp = damp
                    quantizer = GPTQRounding(statistics: file, importance: importance, options: solver, threads: threads)
                }
            }
            if let data, method == .gptq {
                var solver = GPTQOptions()
                solver.actOrder = actOrder
                solver.damp = damp
                let tokenizer = try model.tokenizer()
                let sequences = try CalibrationSampler.randomWindows(samples: samples, length: seqLen, seed: seed)
                    .sequences(CalibrationData(path: data), tokenizer: tokenizer, bos: tokenizer.addBOS ? tokenizer.bosID : nil)
                var planning = options
                planning.hasImportance = true
                let plan = try QuantizationPlanner(preset: preset, options: planning, headCount: model.config.headCount,
                                                   kvHeadCount: model.config.kvHeadCount, layerCount: model.config.layerCount).plan(model.tensors)
                let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
                let run = try SequentialGPTQ.run(source: model, plan: plan, sequences: sequences, options: solver, threads: threads) { done, total in
                    bar.update(done, of: total, "blocks (GPTQ, true-sequential)")
                }
                bar.finish()
                matrix = run.importance
                quantizer = PrecomputedQuantizer(bytes: run.bytes, fallback: RoundToNearest(importance: run.importance, threads: threads))
            }
            let export = GGUFExport(source: model, preset: preset, options: options,
                                    importance: matrix, threads: threads, allowRequantize: allowRequantize, quantizer: quantizer)
            if dryRun {
                let plan = try export.plan()
                report(plan: plan, fileBytes: try export.fileSize(plan), seconds: nil, dryRun: true)
                return
            }
            let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
            let summary = try export.run(output: output) { p in
                bar.update(p.index + 1, of: p.count, "\(p.tensor.name) \(p.tensor.sourceType.name) -> \(p.tensor.type.name)"
                           + (p.megabytesPerSecond > 0 ? ", \(fixed(p.megabytesPerSecond, 1)) MB/s" : ""))
            }
            bar.finish()
            report(plan: summary.plan, fileBytes: summary.fileBytes, seconds: summary.seconds, dryRun: false)
        }
    }

    func report(plan: [PlannedTensor], fileBytes: Int, seconds: Double?, dryRun: Bool) {
        let parameters = plan.reduce(0) { $0 + $1.dimensions.reduce(1, *) }
        let sourceBytes = plan.reduce(0) { $0 + $1.sourceByteCount }
        let tensorBytes = plan.reduce(0) { $0 + $1.byteCount }
        let bpw = Double(tensorBytes * 8) / Double(max(parameters, 1))
        if json {
            var members: [(String, JSONValue)] = [
                ("source", .string(source)), ("output", dryRun ? .null : .string(output)), ("preset", .string(preset.rawValue)),
                ("dry_run", .bool(dryRun)), ("tensor_count", .integer(Int64(plan.count))), ("parameter_count", .integer(Int64(parameters))),
                ("source_bytes", .integer(Int64(sourceBytes))), ("file_bytes", .integer(Int64(fileBytes))),
                ("bits_per_weight", .number((bpw * 10000).rounded() / 10000)),
            ]
            if let seconds { members.append(("seconds", .number((seconds * 1000).rounded() / 1000))) }
            members.append(("tensors", .array(plan.map { t in
                .object([("name", .string(t.name)), ("shape", .array(t.dimensions.map { .integer(Int64($0)) })),
                         ("from", .string(t.sourceType.name)), ("to", .string(t.type.name)), ("bytes", .integer(Int64(t.byteCount))),
                         ("fallback_from", t.fallbackFrom.map { .string($0.name) } ?? .null)])
            })))
            print(JSONValue.object(members).serialized(indent: 2))
            return
        }
        let width = min(plan.map(\.name.count).max() ?? 4, 48)
        for t in plan {
            let shape = "[" + t.dimensions.map(String.init).joined(separator: ", ") + "]"
            let note = t.fallbackFrom.map { "  (fallback from \($0.name))" } ?? ""
            print("\(t.name.padded(width))  \(shape.padded(14))  \(t.sourceType.name.padded(6)) -> \(t.type.name.padded(6))  \(grouped(t.byteCount).leftPadded(11))\(note)")
        }
        let verb = dryRun ? "would write" : "wrote"
        print("\(verb) \(dryRun ? "" : output + ": ")\(grouped(fileBytes)) bytes (\(megabytes(fileBytes))), \(plan.count) tensors, "
              + "\(fixed(bpw, 4)) bits per weight, from \(megabytes(sourceBytes))" + (seconds.map { " in \(fixed($0, 2)) s" } ?? ""))
    }
}

extension Quantize {
    enum Method: String, ExpressibleByArgument, CaseIterable { case rtn, gptq }
    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case gguf, gptq }

    /// `--format gptq`: a GPTQModel checkpoint folder from the statistics' Gram matrices.
    func writeCheckpoint() throws {
        let model = try ModelFolder(path: source)
        let file = try StatisticsFile(path: stats!)
        try file.check(against: HuggingFaceSource(path: source))
        var settings = GPTQCheckpoint.Options()
        settings.grid.bits = bits
        settings.grid.groupSize = groupSize
        settings.grid.symmetric = !asym
        settings.grid.staticGroups = staticGroups
        settings.grid.mse = mse
        settings.solver.actOrder = actOrder
        settings.solver.damp = damp
        let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
        let summary = try GPTQCheckpoint.write(model: model, statistics: file, options: settings, to: output, threads: threads) { done, total, name in
            bar.update(done, of: total, name)
        }
        bar.finish()
        if summary.maxDamp > damp { printError("quanta: note: a Hessian needed damp \(fixed(summary.maxDamp, 4)) (asked \(fixed(damp, 4))); recorded in quantize_config.json") }
        if json {
            print(JSONValue.object([("output", .string(output)), ("format", .string("gptq")), ("bits", .integer(Int64(bits))),
                                    ("group_size", .integer(Int64(groupSize))), ("quantized", .integer(Int64(summary.quantized))),
                                    ("max_damp", .number(summary.maxDamp)), ("seconds", .number((summary.seconds * 1000).rounded() / 1000))]).serialized(indent: 2))
        } else {
            print("wrote \(output): \(summary.quantized) linear layers in GPTQ \(bits)-bit groups of \(groupSize) in \(fixed(summary.seconds, 2)) s")
        }
    }
}
