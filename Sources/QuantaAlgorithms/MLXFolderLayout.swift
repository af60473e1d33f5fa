import QuantaCore
import QuantaFormats
import QuantaIO

/// MLX's affine layout, which mlx-lm and mlx-swift-lm load (`nn.quantize` on the modules whose
/// `.scales` are stored): for every decoder linear `<name>.weight` (uint32 `[out, in * bits / 32]`,
/// each row's levels one little-endian bit stream), `<name>.scales` and `<name>.biases` (f16
/// `[out, in / group]`), w = scale * q + bias (computed in f16 as MLX does), so bias = -scale *
/// zero of the integer grid;
/// `quantization` (and its copy `quantization_config`, as mlx-lm saves it) in config.json.
/// MLX groups are contiguous: act order needs `--static-groups`.
public struct MLXFolderLayout: CheckpointLayout {
    public init() {}

    public var name: String { "mlx" }
    public var defaultGroupSize: Int { 64 }

    public func check(_ grid: AffineQuantizer.Options, actOrder: Bool) throws {
        guard MLXLayout.supportedBits.contains(grid.bits) else {
            throw QuantaError.unsupported("--bits \(grid.bits)", "the mlx layout stores 2, 3, 4, 5, 6 or 8 bits")
        }
        guard MLXLayout.supportedGroupSizes.contains(grid.groupSize) else {
            throw QuantaError.unsupported("--group-size \(grid.groupSize)", "the mlx layout has groups of 32, 64 or 128")
        }
        guard !actOrder || grid.staticGroups else {
            throw QuantaError.unsupported("--act-order", "MLX groups are contiguous columns; add --static-groups to keep them so")
        }
    }

    public var mixesGrids: Bool { true }

    public var fusesLinears: Bool { false }

    public func storedTensors(prefix: String, rows: Int, columns: Int, grid: GridScheme) -> [(name: String, dtype: DType, shape: [Int])]? {
        let bits = grid.bits
        guard MLXLayout.supportedBits.contains(bits), MLXLayout.supportedGroupSizes.contains(grid.groupSize), columns * bits % 32 == 0,
              columns % grid.groupSize == 0 else { return nil }
        let groups = columns / grid.groupSize
        return [(prefix + ".weight", .u32, [rows, columns * bits / 32]), (prefix + ".scales", .f16, [rows, groups]), (prefix + ".biases", .f16, [rows, groups])]
    }

    public func entries(prefix: String, _ layer: SolvedLinear, bits: Int) throws -> [SafetensorsWriter.Entry] {
        let (rows, columns, groups) = (layer.rows, layer.columns, layer.groups)
        guard columns * bits % 32 == 0, groups > 0, columns % groups == 0, layer.contiguousGroups(of: columns / groups) else {
            throw QuantaError.unsupported(prefix, "\(columns) input columns in \(groups) groups do not fit the mlx layout")
        }
        var scales = [Float](repeating: 0, count: rows * groups), biases = scales
        for r in 0..<rows {
            for g in 0..<groups {
                scales[r * groups + g] = layer.scales[g * rows + r]
                biases[r * groups + g] = -layer.scales[g * rows + r] * layer.zeros[g * rows + r]
            }
        }
        return [
            try .words(prefix + ".weight", dtype: .u32, shape: [rows, columns * bits / 32], MLXLayout.pack(layer.levels, rows: rows, columns: columns, bits: bits)),
            try .f16(prefix + ".scales", shape: [rows, groups], scales),
            try .f16(prefix + ".biases", shape: [rows, groups], biases),
        ]
    }

    public func decode(_ layer: SolvedLinear) -> [Float] {
        var out = [Float](repeating: 0, count: layer.rows * layer.columns)
        for r in 0..<layer.rows {
            for c in 0..<layer.columns {
                let g = Int(layer.groupIndex[c]) * layer.rows + r
                let scale = layer.scales[g]
                out[r * layer.columns + c] = MLXLayout.value(HalfConversion.roundedToF16(scale), layer.levels[r * layer.columns + c],
                                                             HalfConversion.roundedToF16(-scale * layer.zeros[g]), .f16)
            }
        }
        return out
    }

    public func configuration(_ s: CheckpointSettings) -> (config: [(String, JSONValue)], files: [(name: String, json: JSONValue)]) {
        // Per module, as mlx-lm saves a mixed model: its grid under its path; a linear kept in
        // f16 has no entry and no `.scales`, which mlx-lm reads as unquantized.
        var members: [(String, JSONValue)] = [("group_size", .integer(Int64(s.grid.groupSize))), ("bits", .integer(Int64(s.grid.bits))),
                                              ("mode", .string("affine"))]
        for (prefix, grid) in s.overrides {
            guard let grid else { continue }
            members.append((prefix, .object([("group_size", .integer(Int64(grid.groupSize))), ("bits", .integer(Int64(grid.bits))),
                                             ("mode", .string("affine"))])))
        }
        let quantization = JSONValue.object(members)
        var meta: [(String, JSONValue)] = [("quantizer", .string("quanta:\(QuantaVersion.string)")), ("method", .string(s.method)),
                                           ("true_sequential", .bool(s.trueSequential)), ("act_order", .bool(s.solver.actOrder)),
                                           ("sym", .bool(s.grid.symmetric)), ("damp_percent", .number(s.solver.damp)),
                                           ("damp_used_max", .number(s.maxDamp))]
        if let calibration = s.calibration { meta.append(("calibration", .string(calibration))) }
        if let recipe = s.recipe { meta.append(("recipe", .string(recipe))) }
        return ([("quantization", quantization), ("quantization_config", quantization), ("quanta", .object(meta))], [])
    }
}
