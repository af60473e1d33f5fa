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
        commandName: "quantize",
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
    @Option(help: "gguf: a llama.cpp file (TYPE chooses the types). gptq: a GPTQModel/AutoGPTQ checkpoint folder; mlx: an MLX folder; awq: an AutoAWQ GEMM folder; compressed-tensors: llm-compressor's pack-quantized folder (--bits, --group-size).")
    var format: OutputFormat = .gguf
    @Option(help: "gptq/mlx format: bits per weight (gptq: 2, 3, 4 or 8; mlx: 2-6 or 8).") var bits: Int = 4
    @Option(name: .customLong("group-size"), help: "gptq/mlx format: input columns per group (gptq default 128, -1: one per row; mlx default 64: 32, 64 or 128).")
    var groupSize: Int?
    @Flag(help: "gptq/mlx format: symmetric grid (the default, as GPTQModel).") var sym = false
    @Flag(help: "gptq/mlx format: asymmetric grid (zero points per group).") var asym = false
    @Flag(name: .customLong("static-groups"), help: "gptq/mlx format: fit every group from the original weights before solving.") var staticGroups = false
    @Flag(help: "gptq/mlx format: grid search of each group's clipping range (GPTQModel's mse).") var mse = false
    @Option(help: "gptq: calibration text for a true-sequential run (instead of --stats).") var data: String?
    @Option(help: "gptq with --data: random windows.") var samples: Int = 128
    @Option(name: .customLong("seq-len"), help: "gptq with --data: tokens per window.") var seqLen: Int = 512
    @Option(help: "gptq with --data: seed of the windows.") var seed: UInt64 = 0
    @Flag(name: .customLong("duo-scaling"), help: "awq: scales from the activations and the weights' magnitudes (AutoAWQ's duo scaling).")
    var duoScaling = false
    @Flag(name: .customLong("no-gqa-value-pair"), help: "awq: skip the v -> o pair under grouped-query attention, as the reference does.")
    var noGroupedValuePair = false
    @Flag(name: .customLong("act-order"), help: "gptq: columns by decreasing Hessian diagonal (blocks fitted up front).") var actOrder = false
    @Option(help: "gptq: dampening, a fraction of the Hessian's mean diagonal.") var damp: Double = 0.01
    @Flag(name: .customLong("allow-requantize"), help: "Allow quantizing tensors that are already quantized.") var allowRequantize = false
    @Flag(name: .customLong("dry-run"), help: "Print the per-tensor plan and the final size; write nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Print one line per tensor as it is written (progress goes to a terminal's stderr anyway).") var verbose = false
    @OptionGroup(title: "Recipes and mixed precision (GGUF)") var mix: MixOptions

    func validate() throws {
        if mix.recipe != nil || mix.hasTarget {
            let what = mix.recipe != nil ? "--recipe" : "a target"
            if let layout, !layout.mixesGrids {
                throw ValidationError("\(what) mixes grids, which the \(layout.name) layout cannot hold (use gguf, gptq, mlx or compressed-tensors)")
            }
            guard type == nil else { throw ValidationError("\(what) chooses the types; give no TYPE") }
            guard method == .rtn, data == nil else {
                throw ValidationError("\(what) chooses the method per tensor (recipe method section, +gptq candidates); drop --method/--data")
            }
            guard format == .gguf || imatrix == nil else { throw ValidationError("--format \(format.rawValue) takes no --imatrix") }
        } else if format == .gguf {
            guard let type else { throw ValidationError("give the GGUF preset or type (\(GGUFPreset.allCases.map(\.rawValue).joined(separator: ", ")))") }
            guard GGUFPreset(name: type) != nil else {
                throw ValidationError("unknown type '\(type)'; choose one of \(GGUFPreset.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        } else {
            guard type == nil else { throw ValidationError("--format \(format.rawValue) takes no GGUF type (it has --bits and --group-size)") }
            guard imatrix == nil else { throw ValidationError("--format \(format.rawValue) takes no --imatrix") }
            if method == .rtn && (stats != nil || data != nil) {
                throw ValidationError("--method rtn on the \(format.rawValue) grid uses no calibration; drop --stats/--data or use --method gptq")
            }
            do {
                try layout!.check(grid, actOrder: actOrder)
            } catch let error as QuantaError {
                throw ValidationError(error.description)
            }
        }
        guard !(sym && asym) else { throw ValidationError("give --sym or --asym, not both") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard imatrix == nil || stats == nil else { throw ValidationError("give --imatrix or --stats, not both") }
        if method == .gptq && (stats == nil) == (data == nil) {
            throw ValidationError("--method gptq needs --stats (from quanta calibrate with --hessian full) or --data (a true-sequential run), one of them")
        }
        if data != nil && method == .rtn { throw ValidationError("--data goes with --method gptq or awq") }
        if method.isAWQ {
            guard (data == nil) != (stats == nil) else {
                throw ValidationError("--method \(method.rawValue) needs --data, or --stats (the calibration text it names is run again: the search needs each block's inputs), one of them")
            }
            guard !actOrder else { throw ValidationError("--act-order is a GPTQ option") }
        }
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

    var preset: GGUFPreset { GGUFPreset(name: type ?? "") ?? .q8_0 }

    /// The checkpoint layout of `--format gptq|mlx`.
    var layout: CheckpointLayout? { CheckpointLayouts.named(format.rawValue) }

    var grid: AffineQuantizer.Options {
        var grid = AffineQuantizer.Options()
        grid.bits = bits
        grid.groupSize = groupSize ?? layout?.defaultGroupSize ?? 128
        grid.symmetric = method.isAWQ ? sym : !asym  // AWQ's zero points by default (AutoAWQ), GPTQModel's symmetric grid otherwise
        grid.staticGroups = staticGroups
        grid.mse = mse
        return grid
    }

    /// AWQ's options. With GGUF output the search rounds to the integer grid nearest the preset's
    /// type: its bits, asymmetric, groups of its sub-block (16 for Q2_K, Q3_K, Q6_K; 32 otherwise).
    var awqOptions: AWQOptions { awqOptions(preset: preset) }

    func awqOptions(preset: GGUFPreset) -> AWQOptions {
        var awq = AWQOptions()
        awq.grid = format == .gguf ? AWQOptions.grid(nearest: preset.rawValue) : grid
        // The k-quant quantizers search their own ranges, and GPTQ spreads the rounding error:
        // clipping first made both worse here (Q4_K mean KLD 0.003374 with it, 0.003294 without).
        awq.clip = format != .gguf && method != .awqGPTQ
        awq.duoScaling = duoScaling
        awq.groupedValuePair = !noGroupedValuePair
        return awq
    }

    var solver: GPTQOptions {
        var solver = GPTQOptions()
        solver.actOrder = actOrder
        solver.damp = damp
        return solver
    }

    /// AWQ's calibration sequences: from `--data`, or replayed from what `--stats` names (after
    /// checking the statistics belong to these weights); and the text's path.
    func awqSequences(_ model: ModelSource) throws -> ([[Int32]], String) {
        if let data { return (try sequences(data, tokenizer: try model.tokenizer()), data) }
        let file = try StatisticsFile(path: stats!)
        try file.check(against: model)
        return (try file.provenance.replay(tokenizer: try model.tokenizer(), statisticsPath: file.path), file.provenance.dataPath)
    }

    /// The calibration windows of `--data`.
    func sequences(_ data: String, tokenizer: BPETokenizer) throws -> [[Int32]] {
        try sequences(Calibration(path: data, samples: samples, length: seqLen, seed: seed), tokenizer: tokenizer)
    }

    /// Random calibration windows of a text (`--data`, or a recipe's calibration section).
    struct Calibration {
        let path: String
        let samples: Int
        let length: Int
        let seed: UInt64
    }

    /// A recipe's calibration section as the windows it samples.
    func calibration(_ c: Recipe.Calibration) -> Calibration {
        Calibration(path: c.data, samples: c.samples, length: c.sequenceLength, seed: c.seed)
    }

    func sequences(_ c: Calibration, tokenizer: BPETokenizer) throws -> [[Int32]] {
        try CalibrationSampler.randomWindows(samples: c.samples, length: c.length, seed: c.seed)
            .sequences(CalibrationData(path: c.path), tokenizer: tokenizer, bos: tokenizer.addBOS ? tokenizer.bosID : nil)
    }

    func run() throws {
        try reportingFailures {
            if !dryRun {
                try FileSystem.checkOutput(output, option: "OUT", inputs: [source, imatrix, stats, data, mix.recipe, mix.eval].compactMap { $0 },
                                           folder: format != .gguf)
            }
            if format != .gguf { return try writeCheckpoint() }
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
            var maxDamp: Double?
            var statistics: StatisticsFile?
            if let stats {
                let file = try StatisticsFile(path: stats)
                try file.check(against: model)
                let importance = file.importanceMatrix(config: model.config)
                matrix = importance
                statistics = file
                if method == .gptq {
                    quantizer = GPTQRounding(statistics: file, importance: importance, options: solver, threads: threads)
                }
            }
            var resolved: ResolvedRecipe?
            if let recipe = try mix.loadRecipe() { resolved = try ResolvedRecipe(recipe, model: model, options: options) }
            if mix.hasTarget { resolved = try allocate(model, importance: matrix, statistics: statistics, options: options) }
            let preset = resolved?.preset ?? self.preset
            if let resolved { options = resolved.options }
            var solver = self.solver
            var calibration = data.map { Calibration(path: $0, samples: samples, length: seqLen, seed: seed) }
            if let resolved, !resolved.gptq.isEmpty {
                solver.damp = resolved.recipe.damp
                solver.actOrder = resolved.recipe.actOrder
                let rounding = RoundToNearest(importance: matrix, threads: threads)
                if let statistics, let matrix {
                    quantizer = MixedQuantizer(gptqTensors: resolved.gptq, gptq: GPTQRounding(statistics: statistics, importance: matrix, options: solver,
                                                                                               threads: threads), rounding: rounding)
                } else if let c = resolved.recipe.calibration {
                    calibration = self.calibration(c)
                } else {
                    throw QuantaError(.invalidArgument, mix.recipe ?? "allocation", "GPTQ tensors need --stats (with Gram matrices) or the recipe's calibration section")
                }
            }
            if let calibration, method == .gptq || resolved?.gptq.isEmpty == false {
                let sequences = try sequences(calibration, tokenizer: try model.tokenizer())
                var planning = options
                planning.hasImportance = true
                let plan = try QuantizationPlanner(preset: preset, options: planning, headCount: model.config.headCount,
                                                   kvHeadCount: model.config.kvHeadCount, layerCount: model.config.layerCount).plan(model.tensors)
                let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
                let (bytes, run) = try SequentialGPTQ.gguf(source: model, plan: plan, sequences: sequences, options: solver, threads: threads) { done, total in
                    bar.update(done, of: total, "blocks (GPTQ, true-sequential)")
                }
                bar.finish()
                matrix = run.importance
                maxDamp = run.maxDamp
                let solved = resolved.map { r in bytes.filter { r.gptq.contains($0.key) } } ?? bytes
                quantizer = PrecomputedQuantizer(bytes: solved, fallback: RoundToNearest(importance: run.importance, threads: threads))
            }
            var export = GGUFExport(source: model, preset: preset, options: options,
                                    importance: matrix, threads: threads, allowRequantize: allowRequantize, quantizer: quantizer)
            let recipeAWQ = resolved?.recipe.method == "awq"
            if method.isAWQ || recipeAWQ {
                let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
                let sequences: [[Int32]], data: String
                if recipeAWQ, let c = resolved?.recipe.calibration {
                    (sequences, data) = (try self.sequences(self.calibration(c),
                                                            tokenizer: try model.tokenizer()), c.data)
                } else {
                    guard self.data != nil || stats != nil else {
                        throw QuantaError(.invalidArgument, mix.recipe ?? "allocation", "an AWQ recipe needs --stats (its calibration text is run again) or a calibration section")
                    }
                    (sequences, data) = try awqSequences(model)
                }
                (export, maxDamp) = try SequentialAWQ.gguf(source: model, preset: preset, options: options, sequences: sequences, awq: awqOptions(preset: preset),
                                                           gptq: method == .awqGPTQ ? solver : nil, threads: threads) { done, total in
                    bar.update(done, of: total, method == .awqGPTQ ? "blocks (AWQ + GPTQ)" : "blocks (AWQ)")
                }
                bar.finish()
                export.extraMetadata = [("quanta.awq.gqa_value_pair", .bool(!noGroupedValuePair)), ("quanta.awq.duo_scaling", .bool(duoScaling)),
                                        ("quanta.awq.calibration", .string(data)), ("quanta.version", .string(QuantaVersion.string))]
                if method == .awqGPTQ {
                    export.extraMetadata += [("quanta.gptq.damp_percent", .float32(Float(damp))), ("quanta.gptq.damp_used_max", .float32(Float(maxDamp ?? damp)))]
                }
            }
            if method == .gptq {
                // What GPTQ did, for whoever reads the file later; the dampening it finally took is known only at the end.
                let rounding = quantizer as? GPTQRounding
                export.extraMetadata = [("quanta.gptq.true_sequential", .bool(data != nil)), ("quanta.gptq.act_order", .bool(actOrder)),
                                        ("quanta.gptq.damp_percent", .float32(Float(damp))), ("quanta.gptq.damp_used_max", .float32(Float(maxDamp ?? damp))),
                                        ("quanta.gptq.calibration", .string(data ?? stats ?? "")), ("quanta.version", .string(QuantaVersion.string))]
                export.lateMetadata = { [("quanta.gptq.damp_used_max", .float32(Float(rounding?.maxDamp ?? maxDamp ?? damp)))] }
            }
            if let resolved {
                stamp(&export, resolved.recipe, mix: resolved.mix)
            } else if !method.isAWQ || (method == .awq && !duoScaling && !noGroupedValuePair) {
                // A recipe has no AWQ + GPTQ and no AWQ search options: those files carry quanta.awq.* only.
                stamp(&export, try recipe(model, preset: preset, options: options, importance: matrix), mix: nil)
            }
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
            if let rounding = quantizer as? GPTQRounding { maxDamp = rounding.maxDamp }
            if let maxDamp, maxDamp > damp {
                printError("quanta: note: a Hessian was not positive definite at damp \(fixed(damp, 4)); GPTQ raised it up to \(fixed(maxDamp, 4))")
            }
            report(plan: summary.plan, fileBytes: summary.fileBytes, seconds: summary.seconds, dryRun: false, maxDamp: maxDamp)
        }
    }

    func report(plan: [PlannedTensor], fileBytes: Int, seconds: Double?, dryRun: Bool, maxDamp: Double? = nil) {
        let parameters = plan.reduce(0) { $0 + $1.dimensions.reduce(1, *) }
        let sourceBytes = plan.reduce(0) { $0 + $1.sourceByteCount }
        let tensorBytes = plan.reduce(0) { $0 + $1.byteCount }
        let bpw = Double(tensorBytes * 8) / Double(max(parameters, 1))
        if json {
            var members: [(String, JSONValue)] = [
                ("source", .string(source)), ("output", .string(output)), ("preset", .string(preset.rawValue)),
                ("dry_run", .bool(dryRun)), ("tensor_count", .integer(Int64(plan.count))), ("parameter_count", .integer(Int64(parameters))),
                ("source_bytes", .integer(Int64(sourceBytes))), ("file_bytes", .integer(Int64(fileBytes))),
                ("bits_per_weight", .number((bpw * 10000).rounded() / 10000)),
            ]
            if let seconds { members.append(("seconds", .number((seconds * 1000).rounded() / 1000))) }
            if let maxDamp { members.append(("gptq_max_damp", .number(maxDamp))) }
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
    enum Method: String, ExpressibleByArgument, CaseIterable {
        case rtn, gptq, awq
        case awqGPTQ = "awq+gptq"

        var isAWQ: Bool { self == .awq || self == .awqGPTQ }
    }
    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case gguf, gptq, mlx, awq
        case compressedTensors = "compressed-tensors"
    }

    /// `--format gptq|mlx`: a checkpoint folder, by GPTQ on stored Gram matrices (`--stats`), by
    /// true-sequential GPTQ on calibration text (`--data`), or by round-to-nearest on the grid.
    func writeCheckpoint() throws {
        var settings = GPTQCheckpoint.Options()
        settings.grid = grid
        settings.solver = solver
        settings.layout = layout!
        let model = try HuggingFaceSource(path: source)
        let file = try stats.map { try StatisticsFile(path: $0) }
        try file?.check(against: model)
        // A recipe or an allocation chooses each linear's grid and method; GPTQ then runs on the
        // statistics' Gram matrices, or true-sequentially on the recipe's calibration text.
        var sequential = method == .gptq ? data.map { Calibration(path: $0, samples: samples, length: seqLen, seed: seed) } : nil
        var statistics = file
        var mixed: CheckpointRecipe?
        if let recipe = try mix.loadRecipe() {
            guard recipe.format == format.rawValue else {
                throw QuantaError(.invalidArgument, mix.recipe!, "is a \(recipe.format) recipe; give --format \(recipe.format)")
            }
            mixed = try CheckpointRecipe(recipe, config: model.config)
        } else if mix.hasTarget {
            mixed = try allocateCheckpoint(model, statistics: file, layout: layout!)
        }
        if let mixed {
            mixed.apply(to: &settings)
            if !mixed.needsGPTQ {
                statistics = nil
            } else if file == nil {
                guard let c = mixed.recipe.calibration else {
                    throw QuantaError(.invalidArgument, mix.recipe ?? "allocation", "GPTQ tensors need --stats (with Gram matrices) or the recipe's calibration section")
                }
                sequential = calibration(c)
            }
        } else if !method.isAWQ {
            settings.recipe = checkpointRecipe().yaml
        }
        let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
        let summary: GPTQCheckpoint.Summary
        var tokenizeSeconds = 0.0
        if method.isAWQ {
            let begin = monotonicSeconds()
            let (sequences, data) = try awqSequences(model)
            tokenizeSeconds = monotonicSeconds() - begin
            let (written, reports) = try GPTQCheckpoint.writeAWQ(source: model, sequences: sequences, calibration: data, options: settings, awq: awqOptions,
                                                                 gptq: method == .awqGPTQ, to: output, threads: threads) { done, total in
                bar.update(done, of: total, "blocks (AWQ)")
            }
            summary = written
            if verbose {
                for (l, report) in reports.enumerated() {
                    let pairs = AWQPair.allCases.compactMap { pair in
                        report.alpha[pair].map { "\(pair.rawValue) alpha \(fixed(Double($0), 2)) loss \(report.loss[pair]!.best) (alpha 0: \(report.loss[pair]!.plain))" }
                    }
                    printError("quanta: block \(l): " + pairs.joined(separator: "; "))
                }
            }
        } else if let sequential {
            let begin = monotonicSeconds()
            let sequences = try sequences(sequential, tokenizer: try model.tokenizer())
            tokenizeSeconds = monotonicSeconds() - begin
            summary = try GPTQCheckpoint.writeSequential(source: model, sequences: sequences, calibration: sequential.path, options: settings, to: output,
                                                         threads: threads) { done, total in
                bar.update(done, of: total, "blocks (GPTQ, true-sequential)")
            }
        } else {
            summary = try GPTQCheckpoint.write(model: model.model, statistics: statistics, options: settings, to: output, threads: threads) { done, total, name in
                bar.update(done, of: total, name)
            }
        }
        bar.finish()
        if method == .gptq && summary.maxDamp > damp {
            printError("quanta: note: a Hessian was not positive definite at damp \(fixed(damp, 4)); GPTQ raised it up to \(fixed(summary.maxDamp, 4)) (recorded in config.json)")
        }
        if verbose, let run = summary.run { printError("quanta: stages (s): \(stages(run, tokenize: tokenizeSeconds, total: summary.seconds + tokenizeSeconds).serialized())") }
        var how = method == .rtn ? "round-to-nearest" : method == .awq ? "AWQ" : method == .awqGPTQ ? "AWQ + GPTQ" : data != nil ? "GPTQ, true-sequential" : "GPTQ"
        var grids = "\(bits)-bit groups of \(grid.groupSize)"
        var counts: [(String, Int)] = []
        if let mixed {
            how = (mixed.mix != nil ? "allocation" : "recipe") + (mixed.needsGPTQ ? sequential != nil ? ", GPTQ true-sequential" : ", GPTQ on --stats" : ", round-to-nearest")
            var tally: [String: Int] = [:]
            for assignment in mixed.assigned.values {
                switch assignment {
                case .keep: tally["f16", default: 0] += 1
                case let .grid(g, gptq): tally[g.description + (gptq && mixed.needsGPTQ ? "+gptq" : ""), default: 0] += 1
                }
            }
            counts = tally.sorted { $0.key < $1.key }
            grids = "mixed grids (" + counts.map { "\($0.0) ×\($0.1)" }.joined(separator: ", ") + ")"
        }
        if json {
            var members: [(String, JSONValue)] = [
                ("output", .string(output)), ("format", .string(format.rawValue)), ("method", .string(mixed == nil ? method.rawValue : "mixed")),
                ("true_sequential", .bool(sequential != nil)), ("bits", .integer(Int64(settings.grid.bits))),
                ("group_size", .integer(Int64(settings.grid.groupSize))), ("quantized", .integer(Int64(summary.quantized))),
                ("max_damp", .number(summary.maxDamp)), ("seconds", .number(millis(summary.seconds + tokenizeSeconds))),
            ]
            if !counts.isEmpty { members.append(("grids", .object(counts.map { ($0.0, .integer(Int64($0.1))) }))) }
            if let mix = mixed?.mix {
                members.append(("predicted_kld_sum", .number(mix.predictedDrift)))
                members.append(("allocated_bytes", .integer(Int64(mix.bytes))))
            }
            if let run = summary.run { members.append(("stages", stages(run, tokenize: tokenizeSeconds, total: summary.seconds + tokenizeSeconds))) }
            print(JSONValue.object(members).serialized(indent: 2))
        } else {
            print("wrote \(output): \(summary.quantized) linear layers as \(format.rawValue) \(grids) (\(how)) in \(fixed(summary.seconds, 2)) s")
        }
        if let note = layout!.loaderNote(settings.grid, actOrder: settings.solver.actOrder, mixed: counts.count > 1) { printError("quanta: note: " + note) }
    }

    func millis(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

    /// Wall seconds per stage of a true-sequential run: tokenizing the text, the block passes
    /// (forward products, of which `statistics` went to the sums and Gram matrices), the
    /// factorizations, the solves, and the rest (loading, writing).
    func stages(_ run: SequentialGPTQ.Run, tokenize: Double, total: Double) -> JSONValue {
        let rest = total - tokenize - run.passSeconds - run.factorizeSeconds - run.solveSeconds
        return .object([("tokenize", .number(millis(tokenize))), ("block_passes", .number(millis(run.passSeconds))),
                        ("of_which_statistics", .number(millis(run.statisticsSeconds))), ("factorize", .number(millis(run.factorizeSeconds))),
                        ("solve", .number(millis(run.solveSeconds))), ("load_and_write", .number(millis(max(0, rest))))])
    }
}
