import ArgumentParser
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import QuantaReport

/// `quanta quantize` options for recipes and mixed precision (GGUF and checkpoint folders).
struct MixOptions: ParsableArguments {
    @Option(help: ArgumentHelp("YAML recipe: preset or default scheme, ordered rules `match: REGEX` -> `scheme: TYPE | TYPE+gptq | skip` (the first rule whose regex occurs in the GGUF tensor name wins), method and calibration settings. A checkpoint folder's recipe has `format: gptq|mlx|compressed-tensors` and grids (`w4g128`, `w8g64:asym`, `+gptq`).", valueName: "FILE"))
    var recipe: String?
    @Option(name: .customLong("target-bpw"), help: "Allocate one scheme per tensor minimizing the measured drift at this many bits per weight (GGUF: all tensors' bytes × 8 / parameters; folders: the quantized linears' stored bytes × 8 / their parameters).")
    var targetBPW: Double?
    @Option(name: .customLong("target-size"), help: "Allocate one scheme per tensor minimizing the measured drift with the whole file (GGUF) or model.safetensors (folders) at most this many bytes.")
    var targetSize: Int?
    @Option(help: "Sensitivity slice text (default: the statistics' calibration text).") var eval: String?
    @Option(help: "Sensitivity table cache (HDF5; read when it matches, updated otherwise).") var sensitivity: String?
    @Option(help: "Candidates of the allocation, comma-separated: GGUF types and TYPE+gptq (default \(SensitivityCandidate.defaults.map(\.description).joined(separator: ","))); for folders grids wBgG[:asym][+gptq] (default: the layout's bit widths at its group size, +gptq with --stats).")
    var candidates: String?
    @Option(name: .customLong("min-type"), help: "No candidate with fewer bits per weight than this type.") var minType: String?
    @Option(help: ArgumentHelp("Tensors matching REGEX take SCHEME (a type, TYPE+gptq or skip) in the allocation; repeatable, first match wins.", valueName: "REGEX=SCHEME"))
    var pin: [String] = []
    @Option(help: ArgumentHelp("Tensors matching REGEX take the same candidate; repeatable.", valueName: "REGEX")) var tie: [String] = []
    @Option(name: .customLong("slice-ctx"), help: "Sensitivity slice: tokens per chunk.") var sliceContext: Int = 256
    @Option(name: .customLong("slice-chunks"), help: "Sensitivity slice: chunks.") var sliceChunks: Int = 8

    var hasTarget: Bool { targetBPW != nil || targetSize != nil }

    func validate() throws {
        guard targetBPW == nil || targetSize == nil else { throw ValidationError("give --target-bpw or --target-size, not both") }
        guard recipe == nil || !hasTarget else { throw ValidationError("a target writes its own recipe; give --recipe or a target, not both") }
        if let targetBPW, !(targetBPW > 0 && targetBPW <= 32) { throw ValidationError("--target-bpw must be in (0, 32]") }
        if let targetSize, targetSize <= 0 { throw ValidationError("--target-size must be a positive number of bytes") }
        if let minType, GGMLType(name: minType) == nil { throw ValidationError("--min-type: unknown type '\(minType)'") }
        if let candidates { _ = try SensitivityCandidate.list(candidates) }
        _ = try pins()
        guard sliceContext >= 4, sliceChunks >= 1 else { throw ValidationError("--slice-ctx must be at least 4 and --slice-chunks at least 1") }
    }

    func pins() throws -> [(pattern: String, scheme: RecipeScheme)] {
        try pin.map { rule in
            let parts = rule.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let scheme = RecipeScheme(parts[1]) else {
                throw ValidationError("--pin '\(rule)' must be REGEX=SCHEME with a type Quanta writes, a grid (w4g128), TYPE+gptq or skip")
            }
            return (parts[0], scheme)
        }
    }

    func loadRecipe() throws -> Recipe? {
        guard let recipe else { return nil }
        let bytes = try FileSystem.read(recipe)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw QuantaError.malformed(recipe, "is not valid UTF-8") }
        return try Recipe.parse(text, file: recipe)
    }
}

/// How a recipe or an allocation turns into `quantize`'s plan.
struct ResolvedRecipe {
    let recipe: Recipe
    let preset: GGUFPreset
    /// The planner's options: the command line's, with the recipe's per-tensor types and, for a
    /// `default:` recipe, pure.
    let options: QuantizationOptions
    /// Tensors GPTQ solves.
    let gptq: Set<String>
    /// What the allocation predicted (nil for a recipe file).
    let mix: MixResult?

    /// Applies `recipe` to `model`'s tensors: the preset's plan first (or `pure` with the default
    /// scheme's type), then the recipe's scheme where it has one.
    init(_ recipe: Recipe, model: ModelSource, options: QuantizationOptions, mix: MixResult? = nil) throws {
        var base: GGUFPreset
        var options = options
        if let name = recipe.preset {
            base = GGUFPreset(name: name)!
        } else {
            guard case let .type(type, _)? = recipe.defaultScheme, let preset = GGUFPreset.pure(type) else {
                throw QuantaError(.invalidArgument, "recipe", "the default scheme must be a GGUF type with a llama-quantize file type")
            }
            base = preset
            options.pure = true
        }
        let c = model.config
        func plan(_ preset: GGUFPreset, _ options: QuantizationOptions) throws -> [PlannedTensor] {
            try QuantizationPlanner(preset: preset, options: options, headCount: c.headCount, kvHeadCount: c.kvHeadCount,
                                    layerCount: c.layerCount).plan(model.tensors)
        }
        // The tensors a recipe may touch are those a quantized preset would (F16/F32 presets keep them all).
        var probing = options
        probing.pure = true
        let quantizedByPreset = Set(try plan(base, options).filter(\.quantized).map(\.name))
        var assigned: [String: GGMLType] = [:], gptq = Set<String>()
        for tensor in try plan(.q8_0, probing) where tensor.quantized {
            switch recipe.scheme(for: tensor.name) {
            case nil:
                if recipe.method == "gptq" && quantizedByPreset.contains(tensor.name) { gptq.insert(tensor.name) }
            case .skip?: assigned[tensor.name] = tensor.sourceType
            case let .grid(grid, _)?:
                throw QuantaError(.invalidArgument, "recipe: tensor '\(tensor.name)'", "\(grid) is an integer grid; GGUF files store ggml types")
            case let .type(type, method)?:
                guard tensor.dimensions[0] % type.blockSize == 0 else {
                    throw QuantaError(.invalidArgument, "recipe: tensor '\(tensor.name)'",
                                      "rows of \(tensor.dimensions[0]) values cannot be stored as \(type.name) (blocks of \(type.blockSize))")
                }
                assigned[tensor.name] = type
                if (method ?? recipe.method) == "gptq" && type != tensor.sourceType { gptq.insert(tensor.name) }
            }
        }
        options.assigned = assigned
        self.recipe = recipe
        self.preset = base
        self.options = options
        self.gptq = gptq
        self.mix = mix
    }
}

extension Quantize {
    /// The allocation for `--target-bpw` / `--target-size`: sensitivity (cached with
    /// `--sensitivity`), then the cheapest-drift candidate per tensor within the budget.
    func allocate(_ model: ModelSource, importance: ImportanceMatrix?, statistics: StatisticsFile?, options: QuantizationOptions) throws -> ResolvedRecipe {
        let candidates = try SensitivityCandidate.list(mix.candidates ?? SensitivityCandidate.defaults.map(\.description).joined(separator: ","))
        if let grid = candidates.first(where: { $0.type == nil }) {
            throw QuantaError(.invalidArgument, "--candidates", "\(grid) is an integer grid; for GGUF give ggml types (or use --format gptq, mlx or compressed-tensors)")
        }
        _ = try SensitivityCandidate.allAWQ(candidates)  // before the measurements, not after
        let (analysis, table) = try sensitivityTable(model, importance: importance, statistics: statistics, candidates: candidates)
        let constraints = try mixConstraints()
        let quantizable = Set(analysis.tensors.map(\.name))
        let fixedTensors = model.tensors.filter { !quantizable.contains($0.name) }
        let alignment = 32
        func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
        var budget: Int
        var cost: (SourceTensor, GGMLType) -> Int
        func schemeCost(_ tensor: SourceTensor, _ scheme: RecipeScheme) -> Int? {
            switch scheme {
            case .skip: cost(tensor, tensor.type)
            case let .type(type, _): cost(tensor, type)
            case .grid: nil
            }
        }
        if let bpw = mix.targetBPW {
            let parameters = model.tensors.reduce(0) { $0 + $1.elementCount }
            budget = Int((bpw * Double(parameters) / 8).rounded(.down)) - fixedTensors.reduce(0) { $0 + $1.type.byteCount(dimensions: $1.dimensions) }
            cost = { $1.byteCount(dimensions: $0.dimensions) }
        } else {
            budget = mix.targetSize! - fixedTensors.reduce(0) { $0 + padded($1.type.byteCount(dimensions: $1.dimensions)) }
            cost = { padded($1.byteCount(dimensions: $0.dimensions)) }
        }
        // The header (metadata, the recipe among it) comes out of a size budget; it depends on
        // the recipe's text, so the allocation is repeated until the header it assumed holds.
        var header = 0
        for _ in 0..<6 {
            let result = try MixedPrecision.allocate(table: table, tensors: analysis.tensors, candidates: candidates.map(\.description), budget: budget - header,
                                                     constraints: constraints, bytes: schemeCost)
            let resolved = try ResolvedRecipe(result.recipe, model: model, options: options, mix: result)
            guard let size = mix.targetSize else { return resolved }
            var export = GGUFExport(source: model, preset: resolved.preset, options: resolved.options, importance: importance, threads: threads)
            stamp(&export, resolved.recipe, mix: resolved.mix)
            let plan = try export.plan()
            let fileBytes = try export.fileSize(plan)
            let tensorBytes = plan.reduce(0) { $0 + padded($1.byteCount) }
            if fileBytes <= size { return resolved }
            header = max(header + alignment, fileBytes - tensorBytes)
        }
        throw QuantaError(.invalidArgument, "--target-size \(mix.targetSize!)", "no allocation fits with the file's header; raise the size")
    }

    /// The sensitivity table of `candidates` (read from and written to `--sensitivity`), and the analysis that made it.
    func sensitivityTable(_ model: ModelSource, importance: ImportanceMatrix?, statistics: StatisticsFile?,
                          candidates: [SensitivityCandidate]) throws -> (SensitivityAnalysis, SensitivityTable) {
        guard statistics != nil || mix.eval != nil else {
            throw QuantaError(.invalidArgument, "--target-\(mix.targetSize != nil ? "size" : "bpw")",
                              "needs --stats (its calibration text is the sensitivity slice) or --eval TEXT")
        }
        let slice = try SensitivitySlice(source: model, statistics: statistics, text: mix.eval, context: mix.sliceContext, chunks: mix.sliceChunks,
                                         addBOS: .auto, importance: importance)
        let cached = try mix.sensitivity.flatMap { FileSystem.kind(of: $0) == .file ? try SensitivityTable.read($0) : nil }
        let analysis = try SensitivityAnalysis(source: model, importance: importance, statistics: statistics, threads: threads)
        analysis.awq = try awqWindows(candidates, model: model, statistics: statistics)
        let bar = ProgressBar(enabled: !json || verbose, verbose: verbose)
        let table = try analysis.run(chunks: slice.chunks, firstScored: mix.sliceContext / 2, candidates: candidates,
                                     key: slice.key, reuse: cached) { done, total in bar.update(done, of: total, "sensitivity (tensor x candidate)") }
        bar.finish()
        if let path = mix.sensitivity { try table.write(path) }
        return (analysis, table)
    }

    /// What `TYPE+awq` candidates search on: the statistics' calibration windows, replayed.
    func awqWindows(_ candidates: [SensitivityCandidate], model: ModelSource, statistics: StatisticsFile?) throws -> (sequences: [[Int32]], options: AWQOptions)? {
        guard candidates.contains(where: { $0.method == .awq }), let statistics else { return nil }
        return (try statistics.provenance.replay(tokenizer: try model.tokenizer(), statisticsPath: statistics.path), AWQOptions())
    }

    func mixConstraints() throws -> MixConstraints {
        var constraints = MixConstraints()
        constraints.minType = mix.minType.flatMap { GGMLType(name: $0) }
        constraints.pins = try mix.pins()
        constraints.ties = mix.tie
        return constraints
    }

    /// The recipe that reproduces a run without one: the preset (or `default` with --pure), an
    /// exact rule for every tensor whose type the command line changed, the method and calibration.
    func recipe(_ model: ModelSource, preset: GGUFPreset, options: QuantizationOptions, importance: ImportanceMatrix?) throws -> Recipe {
        var plain = QuantizationOptions()
        plain.pure = options.pure
        plain.hasImportance = importance != nil
        var recipe = options.pure ? Recipe(defaultScheme: .type(preset.defaultType, method: nil)) : Recipe(preset: preset.rawValue)
        let c = model.config
        func plan(_ options: QuantizationOptions) throws -> [PlannedTensor] {
            try QuantizationPlanner(preset: preset, options: options, headCount: c.headCount, kvHeadCount: c.kvHeadCount,
                                    layerCount: c.layerCount).plan(model.tensors)
        }
        var with = options
        with.hasImportance = importance != nil
        let before = try plan(plain), after = try plan(with)
        for (a, b) in zip(before, after) where a.type != b.type {
            recipe.rules.append(.init(pattern: Recipe.exact(b.name), scheme: b.quantized ? .type(b.type, method: nil) : .skip))
        }
        recipe.method = method == .gptq ? "gptq" : method == .awq ? "awq" : "rtn"
        recipe.damp = damp
        recipe.actOrder = actOrder
        if let data {
            recipe.calibration = Recipe.Calibration(data: data)
            recipe.calibration!.samples = samples
            recipe.calibration!.sequenceLength = seqLen
            recipe.calibration!.seed = seed
        }
        return recipe
    }

    /// What every GGUF `quantize` writes carries: the version that wrote it (once), the recipe
    /// that reproduces it and, for an allocation, the drift it predicted.
    func stamp(_ export: inout GGUFExport, _ recipe: Recipe, mix: MixResult?) {
        if !export.extraMetadata.contains(where: { $0.key == "quanta.version" }) {
            export.extraMetadata.append(("quanta.version", .string(QuantaVersion.string)))
        }
        export.extraMetadata.append(("quanta.recipe", .string(recipe.yaml)))
        if let mix { export.extraMetadata.append(("quanta.mix.predicted_kld_sum", .float32(Float(mix.predictedDrift)))) }
    }
}
