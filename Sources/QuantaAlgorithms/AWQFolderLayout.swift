import QuantaCore
import QuantaFormats
import QuantaIO

/// AutoAWQ's GEMM checkpoint layout (`AWQLayout`), which transformers and vLLM load: per decoder
/// linear `qweight`, `qzeros`, `scales`; `quantization_config` with `quant_method: awq`,
/// `version: gemm`, `zero_point`, `group_size`, `bits`. 4 bits, contiguous groups.
public struct AWQFolderLayout: CheckpointLayout {
    public init() {}

    public var name: String { "awq" }
    public var defaultGroupSize: Int { 128 }

    public func check(_ grid: AffineQuantizer.Options, actOrder: Bool) throws {
        guard grid.bits == AWQLayout.bits else { throw QuantaError.unsupported("--bits \(grid.bits)", "the awq (GEMM) layout stores 4 bits") }
        guard grid.groupSize > 0 else { throw QuantaError.unsupported("--group-size \(grid.groupSize)", "the awq layout needs groups (not -1)") }
        guard !actOrder || grid.staticGroups else {
            throw QuantaError.unsupported("--act-order", "awq groups are contiguous columns; add --static-groups to keep them so")
        }
    }

    /// AutoAWQ's loaders take one grid for every linear.
    public var mixesGrids: Bool { false }

    public var fusesLinears: Bool { true }

    public func storedTensors(prefix: String, rows: Int, columns: Int, grid: GridScheme) -> [(name: String, dtype: DType, shape: [Int])]? {
        guard grid.bits == AWQLayout.bits, grid.groupSize > 0, rows % 8 == 0, columns % grid.groupSize == 0 else { return nil }
        let groups = columns / grid.groupSize
        return [(prefix + ".qweight", .i32, [columns, rows / 8]), (prefix + ".qzeros", .i32, [groups, rows / 8]), (prefix + ".scales", .f16, [groups, rows])]
    }

    public func entries(prefix: String, _ layer: SolvedLinear, bits: Int) throws -> [SafetensorsWriter.Entry] {
        let (rows, columns, groups) = (layer.rows, layer.columns, layer.groups)
        guard rows % 8 == 0, groups > 0, columns % groups == 0, layer.contiguousGroups(of: columns / groups) else {
            throw QuantaError.unsupported(prefix, "\(rows) x \(columns) in \(groups) groups does not fit the awq layout")
        }
        // Levels and zero points transposed to [in, out] and [groups, out].
        var levels = [Int32](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { levels[c * rows + r] = layer.levels[r * columns + c] } }
        let zeros = layer.zeros.map { Int32($0) }
        return [
            try .words(prefix + ".qweight", dtype: .i32, shape: [columns, rows / 8], AWQLayout.pack(levels, rows: columns, columns: rows)),
            try .words(prefix + ".qzeros", dtype: .i32, shape: [groups, rows / 8], AWQLayout.pack(zeros, rows: groups, columns: rows)),
            try .f16(prefix + ".scales", shape: [groups, rows], layer.scales),
        ]
    }

    public func decode(_ layer: SolvedLinear) -> [Float] { GPTQFolderLayout().decode(layer) }

    public func configuration(_ s: CheckpointSettings) -> (config: [(String, JSONValue)], files: [(name: String, json: JSONValue)]) {
        var meta: [(String, JSONValue)] = [("quantizer", .string("quanta:\(QuantaVersion.string)")), ("method", .string(s.method)),
                                           ("sym", .bool(s.grid.symmetric))]
        if let calibration = s.calibration { meta.append(("calibration", .string(calibration))) }
        let quantization = JSONValue.object([("quant_method", .string("awq")), ("version", .string("gemm")), ("bits", .integer(Int64(s.grid.bits))),
                                             ("group_size", .integer(Int64(s.grid.groupSize))), ("zero_point", .bool(true)),
                                             ("modules_to_not_convert", .null)])
        return ([("quantization_config", quantization), ("quanta", .object(meta))], [])
    }
}
