import QuantaCore
import QuantaFormats
import QuantaIO

/// compressed-tensors' `pack-quantized` checkpoint (`CompressedTensorsLayout`; llm-compressor's
/// W4A16 / W4A16_ASYM and W8A16 schemes, group or channel strategy), which vLLM loads: per
/// decoder linear `weight_packed`, `weight_scale` (f16, the folder's dtype), `weight_zero_point`
/// (asymmetric only), `weight_shape`; `quantization_config` with `quant_method:
/// compressed-tensors`, `format: pack-quantized`, one config group targeting `Linear`, the head ignored.
public struct CompressedTensorsFolderLayout: CheckpointLayout {
    public init() {}

    public var name: String { "compressed-tensors" }
    public var defaultGroupSize: Int { 128 }

    public func check(_ grid: AffineQuantizer.Options, actOrder: Bool) throws {
        guard CompressedTensorsLayout.supportedBits.contains(grid.bits) else {
            throw QuantaError.unsupported("--bits \(grid.bits)", "the compressed-tensors pack-quantized layout is written for 4 and 8 bits (what vLLM reads)")
        }
        guard grid.groupSize == -1 || grid.groupSize > 0 else { throw QuantaError(.invalidArgument, "--group-size", "must be positive or -1") }
        guard !actOrder || grid.staticGroups || grid.groupSize == -1 else {
            throw QuantaError.unsupported("--act-order", "compressed-tensors groups are contiguous columns; add --static-groups to keep them so")
        }
    }

    public var mixesGrids: Bool { true }

    public var fusesLinears: Bool { true }

    public func storedTensors(prefix: String, rows: Int, columns: Int, grid: GridScheme) -> [(name: String, dtype: DType, shape: [Int])]? {
        let bits = grid.bits, groups = grid.groups(columns: columns)
        guard CompressedTensorsLayout.supportedBits.contains(bits), columns * bits % 32 == 0, rows * bits % 32 == 0,
              grid.groupSize == -1 || columns % grid.groupSize == 0 else { return nil }
        var stored: [(name: String, dtype: DType, shape: [Int])] = [(prefix + ".weight_packed", .i32, [rows, columns * bits / 32]),
                                                                   (prefix + ".weight_scale", .f16, [rows, groups]), (prefix + ".weight_shape", .i64, [2])]
        if !grid.symmetric { stored.append((prefix + ".weight_zero_point", .i32, [rows * bits / 32, groups])) }
        return stored
    }

    public func entries(prefix: String, _ layer: SolvedLinear, bits: Int) throws -> [SafetensorsWriter.Entry] {
        let (rows, columns, groups) = (layer.rows, layer.columns, layer.groups)
        guard columns * bits % 32 == 0, rows * bits % 32 == 0, groups > 0, columns % groups == 0, layer.contiguousGroups(of: columns / groups) else {
            throw QuantaError.unsupported(prefix, "\(rows) x \(columns) in \(groups) groups does not fit the pack-quantized layout")
        }
        var scales = [Float](repeating: 0, count: rows * groups)
        for r in 0..<rows { for g in 0..<groups { scales[r * groups + g] = layer.scales[g * rows + r] } }
        var entries: [SafetensorsWriter.Entry] = [
            try .words(prefix + ".weight_packed", dtype: .i32, shape: [rows, columns * bits / 32], MLXLayout.pack(layer.levels, rows: rows, columns: columns, bits: bits)),
            try .f16(prefix + ".weight_scale", shape: [rows, groups], scales),
            try .init(name: prefix + ".weight_shape", dtype: .i64, shape: [2],
                      data: [rows, columns].flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: Int64(v) >> (8 * $0)) } }),
        ]
        if !symmetric(layer, bits: bits) {
            entries.append(try .words(prefix + ".weight_zero_point", dtype: .i32, shape: [rows * bits / 32, groups],
                                      CompressedTensorsLayout.packZeros(layer.zeros.map { Int32($0) }, groups: groups, rows: rows, bits: bits)))
        }
        return entries
    }

    /// Whether every zero point is the midpoint (a symmetric grid: no zero points are stored).
    func symmetric(_ layer: SolvedLinear, bits: Int) -> Bool { layer.zeros.allSatisfy { $0 == Float(1 << (bits - 1)) } }

    /// The GPTQ layout's weights (f16 scale times level minus zero), the product rounded to f16 as torch computes it.
    public func decode(_ layer: SolvedLinear) -> [Float] { GPTQFolderLayout().decode(layer).map(HalfConversion.roundedToF16) }

    public func configuration(_ s: CheckpointSettings) -> (config: [(String, JSONValue)], files: [(name: String, json: JSONValue)]) {
        func weights(_ grid: GridScheme) -> JSONValue {
            let channel = grid.groupSize <= 0
            return .object([
                ("num_bits", .integer(Int64(grid.bits))), ("type", .string("int")), ("symmetric", .bool(grid.symmetric)),
                ("strategy", .string(channel ? "channel" : "group")), ("group_size", channel ? .null : .integer(Int64(grid.groupSize))),
                ("dynamic", .bool(false)),
            ])
        }
        func group(_ targets: [String], _ grid: GridScheme) -> JSONValue {
            .object([("format", .string("pack-quantized")), ("input_activations", .null), ("output_activations", .null),
                     ("targets", .array(targets.map { .string($0) })), ("weights", weights(grid))])
        }
        let base = GridScheme(s.grid)
        var groups: [(String, JSONValue)] = [], ignore = ["lm_head"]
        if s.overrides.isEmpty {
            groups = [("group_0", group(["Linear"], base))]
        } else {
            // A mixed folder names every linear in exactly one group (no class-name targets that
            // several groups would match); vLLM maps its fused layers through their members.
            var grids: [GridScheme] = [], targets: [GridScheme: [String]] = [:]
            for (prefix, grid) in s.modules {
                guard let grid else { ignore.append(prefix); continue }
                if targets[grid] == nil { grids.append(grid) }
                targets[grid, default: []].append(prefix)
            }
            groups = grids.enumerated().map { ("group_\($0.offset)", group(targets[$0.element]!, $0.element)) }
        }
        let quantization = JSONValue.object([
            ("config_groups", .object(groups)),
            ("format", .string("pack-quantized")), ("global_compression_ratio", .null), ("ignore", .array(ignore.map { .string($0) })),
            ("kv_cache_scheme", .null), ("quant_method", .string("compressed-tensors")), ("quantization_status", .string("compressed")),
            ("sparsity_config", .object([])),
        ])
        var meta: [(String, JSONValue)] = [("quantizer", .string("quanta:\(QuantaVersion.string)")), ("method", .string(s.method)),
                                           ("true_sequential", .bool(s.trueSequential)), ("act_order", .bool(s.solver.actOrder)),
                                           ("damp_used_max", .number(s.maxDamp))]
        if let calibration = s.calibration { meta.append(("calibration", .string(calibration))) }
        if let recipe = s.recipe { meta.append(("recipe", .string(recipe))) }
        return ([("quantization_config", quantization), ("quanta", .object(meta))], [])
    }
}
