import QuantaCore
import QuantaFormats
import QuantaIO

/// The GPTQModel / AutoGPTQ "gptq" (v1) checkpoint layout, which transformers and vLLM load:
/// for every decoder linear `<name>.qweight` (int32 `[in * bits / 32, out]`, levels packed along
/// the input dimension, low bits first), `<name>.qzeros` (int32 `[groups, out * bits / 32]`, zero
/// points minus one packed along the output dimension), `<name>.scales` (f16 `[groups, out]`) and
/// `<name>.g_idx` (int32 `[in]`, each input column's group); `quantize_config.json` and
/// `quantization_config` in config.json with GPTQModel's keys. A weight dequantizes as
/// `scales[g_idx[i], j] * (q[i, j] - (qzeros[g_idx[i], j] + 1))`.
public struct GPTQFolderLayout: CheckpointLayout {
    public init() {}

    public var name: String { "gptq" }
    public var defaultGroupSize: Int { 128 }

    public func check(_ grid: AffineQuantizer.Options, actOrder: Bool) throws {
        guard GPTQLayout.supportedBits.contains(grid.bits) else {
            throw QuantaError.unsupported("--bits \(grid.bits)", "the gptq layout is written for 2, 3, 4 and 8 bits")
        }
        guard grid.groupSize == -1 || grid.groupSize > 0 else { throw QuantaError(.invalidArgument, "--group-size", "must be positive or -1") }
    }

    /// vLLM 0.33's GPTQ reader (`AutoGPTQConfig`) takes only symmetric 4- and 8-bit grids and
    /// refuses act-order with groups; transformers (through GPTQModel) loads every single grid
    /// written here, but its GPTQ config (optimum 2.3) drops GPTQModel's per-module `dynamic`.
    public func loaderNote(_ grid: AffineQuantizer.Options, actOrder: Bool, mixed: Bool) -> String? {
        if mixed {
            return "transformers reads one grid for every linear (its GPTQ config drops GPTQModel's per-module `dynamic`) and refuses this folder; GPTQModel loads it (on CPU: GPTQModel.load(FOLDER, backend=BACKEND.TORCH))"
        }
        var refused: [String] = []
        if !grid.symmetric { refused.append("asymmetric grids") }
        if ![4, 8].contains(grid.bits) { refused.append("\(grid.bits)-bit grids") }
        if actOrder && grid.groupSize != -1 { refused.append("act-order with groups") }
        guard !refused.isEmpty else { return nil }
        return "vLLM loads GPTQ folders only with symmetric 4- or 8-bit grids and no act-order groups, so it will refuse this one (\(refused.joined(separator: ", "))); transformers and GPTQModel load it. For vLLM use --sym --bits 4|8, or --format compressed-tensors (asymmetric too) or --format awq"
    }

    public var mixesGrids: Bool { true }

    public var fusesLinears: Bool { true }

    public func storedTensors(prefix: String, rows: Int, columns: Int, grid: GridScheme) -> [(name: String, dtype: DType, shape: [Int])]? {
        let bits = grid.bits, groups = grid.groups(columns: columns)
        guard GPTQLayout.supportedBits.contains(bits), columns * bits % 32 == 0, rows * bits % 32 == 0 else { return nil }
        return [(prefix + ".qweight", .i32, [columns * bits / 32, rows]), (prefix + ".qzeros", .i32, [groups, rows * bits / 32]),
                (prefix + ".scales", .f16, [groups, rows]), (prefix + ".g_idx", .i32, [columns])]
    }

    public func entries(prefix: String, _ layer: SolvedLinear, bits: Int) throws -> [SafetensorsWriter.Entry] {
        let (rows, columns, groups) = (layer.rows, layer.columns, layer.groups)
        guard columns * bits % 32 == 0, rows * bits % 32 == 0 else {
            throw QuantaError.unsupported(prefix, "\(rows) x \(columns) does not pack into int32 words at \(bits) bits")
        }
        return [
            try .words(prefix + ".qweight", dtype: .i32, shape: [columns * bits / 32, rows],
                       GPTQLayout.packLevels(layer.levels, rows: rows, columns: columns, bits: bits)),
            try .words(prefix + ".qzeros", dtype: .i32, shape: [groups, rows * bits / 32],
                       GPTQLayout.packZeros(layer.zeros, groups: groups, rows: rows, bits: bits)),
            try .f16(prefix + ".scales", shape: [groups, rows], layer.scales),
            try .words(prefix + ".g_idx", dtype: .i32, shape: [columns], layer.groupIndex.map { UInt32(bitPattern: $0) }),
        ]
    }

    public func decode(_ layer: SolvedLinear) -> [Float] {
        var out = [Float](repeating: 0, count: layer.rows * layer.columns)
        for r in 0..<layer.rows {
            for c in 0..<layer.columns {
                let g = Int(layer.groupIndex[c]) * layer.rows + r
                out[r * layer.columns + c] = HalfConversion.roundedToF16(layer.scales[g]) * (Float(layer.levels[r * layer.columns + c]) - layer.zeros[g])
            }
        }
        return out
    }

    public func configuration(_ s: CheckpointSettings) -> (config: [(String, JSONValue)], files: [(name: String, json: JSONValue)]) {
        var meta: [(String, JSONValue)] = [("quantizer", .array([.string("quanta:\(QuantaVersion.string)")])), ("method", .string(s.method)),
                                           ("damp_used_max", .number(s.maxDamp))]
        if let calibration = s.calibration { meta.append(("calibration", .string(calibration))) }
        if let recipe = s.recipe { meta.append(("recipe", .string(recipe))) }
        var members: [(String, JSONValue)] = [
            ("bits", .integer(Int64(s.grid.bits))), ("group_size", .integer(Int64(s.grid.groupSize))),
            ("desc_act", .bool(s.solver.actOrder)), ("sym", .bool(s.grid.symmetric)),
            ("static_groups", .bool(s.grid.staticGroups)), ("true_sequential", .bool(s.trueSequential)),
            ("damp_percent", .number(s.solver.damp)), ("damp_auto_increment", .number(s.solver.dampIncrement)),
            ("lm_head", .bool(false)), ("mse", .number(s.grid.mse ? 2.4 : 0)),
            ("quant_method", .string("gptq")), ("checkpoint_format", .string("gptq")), ("pack_dtype", .string("int32")),
        ]
        if let dynamic = dynamic(s) { members.append(("dynamic", dynamic)) }
        members.append(("meta", .object(meta)))
        let quantization = JSONValue.object(members)
        return ([("quantization_config", quantization)], [("quantize_config.json", quantization)])
    }

    /// GPTQModel's `dynamic`: per module (fused sets as one pattern, which vLLM matches against
    /// its fused layers) `+:PATTERN` with the grid's bits, group size and symmetry, or `-:PATTERN`
    /// for a linear kept in f16; loaders take the first pattern that matches from the start.
    func dynamic(_ s: CheckpointSettings) -> JSONValue? {
        let overrides = s.overrides
        guard !overrides.isEmpty else { return nil }
        var seen = Set<String>(), members: [(String, JSONValue)] = []
        for (prefix, grid) in overrides {
            let pattern = FusedLinears.pattern(prefix)
            guard seen.insert(pattern).inserted else { continue }
            if let grid {
                members.append(("+:" + pattern, .object([("bits", .integer(Int64(grid.bits))), ("group_size", .integer(Int64(grid.groupSize))),
                                                          ("sym", .bool(grid.symmetric))])))
            } else {
                members.append(("-:" + pattern, .object([])))
            }
        }
        return .object(members)
    }
}
