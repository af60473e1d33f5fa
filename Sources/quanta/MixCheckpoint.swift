import ArgumentParser
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel

/// How a checkpoint recipe (`format: gptq|mlx|compressed-tensors`, integer grids) or an
/// allocation turns into the folder writer's options: every decoder linear's grid (or f16).
struct CheckpointRecipe {
    let recipe: Recipe
    let grid: GridScheme
    /// Per decoder linear, by GGUF name.
    let assigned: [String: GPTQCheckpoint.Assignment]
    /// What the allocation predicted (nil for a recipe file).
    let mix: MixResult?

    init(_ recipe: Recipe, config: ModelConfig, mix: MixResult? = nil) throws {
        guard case let .grid(grid, _)? = recipe.defaultScheme else {
            throw QuantaError(.invalidArgument, "recipe", "a \(recipe.format) recipe's default must be an integer grid such as w4g128")
        }
        var assigned: [String: GPTQCheckpoint.Assignment] = [:]
        for spec in config.architecture.tensors(config) where GPTQCheckpoint.quantizes(spec) {
            switch recipe.scheme(for: spec.ggufName) ?? .grid(grid, method: nil) {
            case .skip: assigned[spec.ggufName] = .keep
            case let .grid(scheme, method): assigned[spec.ggufName] = .grid(scheme, gptq: (method ?? recipe.method) == "gptq")
            case let .type(type, _):
                throw QuantaError(.invalidArgument, "recipe: tensor '\(spec.ggufName)'", "\(type.name) is a GGUF type; a \(recipe.format) folder stores integer grids")
            }
        }
        self.recipe = recipe
        self.grid = grid
        self.assigned = assigned
        self.mix = mix
    }

    /// Whether any linear is solved by GPTQ (it then needs Gram matrices or calibration text).
    var needsGPTQ: Bool { assigned.values.contains { if case .grid(_, true) = $0 { true } else { false } } }

    func apply(to options: inout GPTQCheckpoint.Options) {
        var base = grid.options
        base.staticGroups = recipe.staticGroups
        base.mse = recipe.mse
        options.grid = base
        options.assigned = assigned
        options.recipe = recipe.yaml
        options.solver.damp = recipe.damp
        options.solver.actOrder = recipe.actOrder
    }
}

extension Quantize {
    /// The candidates of a checkpoint allocation when `--candidates` is not given: every bit
    /// width the layout stores at its default group size, solved by GPTQ when statistics are given.
    static func gridCandidates(_ layout: CheckpointLayout, gptq: Bool) -> String {
        (2...8).map { GridScheme(bits: $0, groupSize: layout.defaultGroupSize) }
            .filter { (try? layout.check($0.options, actOrder: false)) != nil }
            .map { $0.description + (gptq ? "+gptq" : "") }.joined(separator: ",")
    }

    /// The recipe a checkpoint run without one embeds: its grid, method and calibration.
    func checkpointRecipe() -> Recipe {
        var recipe = Recipe(defaultScheme: .grid(GridScheme(grid), method: nil))
        recipe.format = format.rawValue
        recipe.method = method == .gptq ? "gptq" : "rtn"
        recipe.damp = damp
        recipe.actOrder = actOrder
        recipe.staticGroups = staticGroups
        recipe.mse = mse
        if let data {
            var calibration = Recipe.Calibration(data: data)
            calibration.samples = samples
            calibration.sequenceLength = seqLen
            calibration.seed = seed
            recipe.calibration = calibration
        }
        return recipe
    }

    /// `--target-bpw` / `--target-size` for a checkpoint folder: sensitivity of the decoder's
    /// linears on integer grids, then the cheapest-drift grid per linear within the budget.
    /// Bits per weight count the linears' stored bytes over their parameters; a size is the
    /// bytes of model.safetensors (header included). Linears vLLM fuses take one grid.
    func allocateCheckpoint(_ model: HuggingFaceSource, statistics: StatisticsFile?, layout: CheckpointLayout) throws -> CheckpointRecipe {
        let importance = statistics?.importanceMatrix(config: model.config)
        let candidates = try SensitivityCandidate.list(mix.candidates ?? Self.gridCandidates(layout, gptq: statistics != nil))
        if let gguf = candidates.first(where: { $0.grid == nil }) {
            throw QuantaError(.invalidArgument, "--candidates", "\(gguf) is a GGUF type; a \(layout.name) folder takes integer grids such as w4g128")
        }
        let (analysis, table) = try sensitivityTable(model, importance: importance, statistics: statistics, candidates: candidates)
        let config = model.config
        let specs = config.architecture.tensors(config).filter { model.model.weights.contains($0.hfName) }
        let linearNames = Set(specs.filter(GPTQCheckpoint.quantizes).map(\.ggufName))
        let linears = analysis.tensors.filter { linearNames.contains($0.name) }

        var constraints = try mixConstraints()
        if layout.fusesLinears {
            constraints.ties += (0..<config.layerCount).flatMap { ["^blk\\.\($0)\\.attn_[qkv]\\.weight$", "^blk\\.\($0)\\.ffn_(gate|up)\\.weight$"] }
        }
        func cost(_ tensor: SourceTensor, _ scheme: RecipeScheme) -> Int? {
            switch scheme {
            case .skip: tensor.elementCount * 2
            case let .grid(grid, _): layout.byteCount(rows: tensor.dimensions[1], columns: tensor.dimensions[0], grid: grid)
            case .type: nil
            }
        }
        let linearParameters = linears.reduce(0) { $0 + $1.elementCount }
        var budget: Int
        if let bpw = mix.targetBPW {
            budget = Int((bpw * Double(linearParameters) / 8).rounded(.down))
        } else {
            budget = mix.targetSize! - specs.filter { !linearNames.contains($0.ggufName) }.reduce(0) { $0 + $1.elementCount * 2 }
        }
        var header = 0
        for _ in 0..<6 {
            let result = try MixedPrecision.allocate(table: table, tensors: linears, candidates: candidates.map(\.description), budget: budget - header,
                                                     constraints: constraints, format: layout.name, bytes: cost)
            let resolved = try CheckpointRecipe(result.recipe, config: config, mix: result)
            guard let size = mix.targetSize else { return resolved }
            let (headerBytes, dataBytes) = try folderBytes(specs, resolved, layout: layout)
            if headerBytes + dataBytes <= size { return resolved }
            header = max(header + 8, headerBytes)
        }
        throw QuantaError(.invalidArgument, "--target-size \(mix.targetSize!)", "no allocation fits with the safetensors header; raise the size")
    }

    /// The header and data bytes of the model.safetensors a resolved recipe writes.
    func folderBytes(_ specs: [TensorSpec], _ resolved: CheckpointRecipe, layout: CheckpointLayout) throws -> (header: Int, data: Int) {
        var entries: [SafetensorsWriter.Entry] = []
        for spec in specs {
            var stored = [(name: spec.hfName, dtype: DType.f16, shape: spec.shape)]
            if GPTQCheckpoint.quantizes(spec), case let .grid(grid, _)? = resolved.assigned[spec.ggufName],
               let tensors = layout.storedTensors(prefix: GPTQCheckpoint.prefix(spec), rows: spec.shape[0], columns: spec.shape[1], grid: grid) {
                stored = tensors
            }
            for t in stored { entries.append(try .init(name: t.name, dtype: t.dtype, shape: t.shape) { _ in }) }
        }
        let (header, ordered) = try SafetensorsWriter.layout(entries, metadata: GPTQCheckpoint.safetensorsMetadata)
        return (header.count, ordered.reduce(0) { $0 + $1.byteCount })
    }
}
