import QuantaCore
import QuantaFormats
import QuantaIO

/// One linear weight `[rows(out), columns(in)]` on an integer grid (GPTQ's or round-to-nearest's),
/// before a layout packs it.
public struct SolvedLinear: Sendable {
    public let rows: Int
    public let columns: Int
    /// Integer levels, row-major `[rows, columns]`, each in 0..<2^bits.
    public var levels: [Int32]
    /// Per group, per row (`[groups, rows]`): scale and zero point; w = scale * (level - zero).
    public var scales: [Float]
    public var zeros: [Float]
    /// Each input column's group.
    public var groupIndex: [Int32]
    public var groups: Int
    /// The dampening its factorization took (0 for round-to-nearest).
    public var damp: Double

    /// Whether every group is a contiguous run of `size` columns (no act-order scattering).
    public func contiguousGroups(of size: Int) -> Bool {
        groupIndex.enumerated().allSatisfy { Int($0.element) == $0.offset / size }
    }
}

/// What a quantized checkpoint says about how it was made (the `meta` of its config).
public struct CheckpointSettings: Sendable {
    public var grid: AffineQuantizer.Options
    public var solver: GPTQOptions
    /// "gptq" or "rtn".
    public var method: String
    public var trueSequential: Bool
    public var maxDamp: Double
    /// Statistics file or calibration text.
    public var calibration: String?
    /// Per decoder linear (its Hugging Face module path, "model.layers.0.mlp.down_proj"), the
    /// grid it is stored on, nil when kept in f16. Empty: every linear on `grid`.
    public var modules: [(prefix: String, grid: GridScheme?)] = []
    /// The recipe that reproduces the folder (YAML), kept in the config's `meta`.
    public var recipe: String?

    /// The modules whose grid differs from `grid` (nil: kept in f16), in order.
    public var overrides: [(prefix: String, grid: GridScheme?)] {
        modules.filter { $0.grid != GridScheme(grid) }
    }
}

/// The linears vLLM fuses into one layer (q/k/v into qkv_proj, gate/up into gate_up_proj): a
/// mixed checkpoint gives each such set one grid, and its patterns name the fused layer too.
public enum FusedLinears {
    static let sets: [(members: [String], fused: String)] = [(["q_proj", "k_proj", "v_proj"], "qkv_proj"), (["gate_proj", "up_proj"], "gate_up_proj")]

    /// The fused layer and its members for a module path ("model.layers.0.self_attn.k_proj" ->
    /// ("model.layers.0.self_attn", ["q_proj", "k_proj", "v_proj"], "qkv_proj")); nil when it is not fused.
    public static func set(of prefix: String) -> (parent: String, members: [String], fused: String)? {
        guard let dot = prefix.lastIndex(of: ".") else { return nil }
        let leaf = String(prefix[prefix.index(after: dot)...])
        guard let set = sets.first(where: { $0.members.contains(leaf) }) else { return nil }
        return (String(prefix[..<dot]), set.members, set.fused)
    }

    /// A Python regex matching the module path exactly, or for a fused set member every member
    /// and the fused layer ("^model\.layers\.0\.self_attn\.(q_proj|k_proj|v_proj|qkv_proj)$").
    public static func pattern(_ prefix: String) -> String {
        func escaped(_ s: String) -> String { s.replacingOccurrences(of: ".", with: "\\.") }
        guard let set = set(of: prefix) else { return "^" + escaped(prefix) + "$" }
        return "^" + escaped(set.parent) + "\\.(" + (set.members + [set.fused]).joined(separator: "|") + ")$"
    }
}

/// A folder layout for integer-grid weights (GPTQModel's, MLX's): how one solved linear is
/// stored, what the stored form decodes to, and what config.json says. A new layout is one file
/// with a type conforming to this and one entry in `CheckpointLayouts.all`.
public protocol CheckpointLayout: Sendable {
    /// The `--format` name.
    var name: String { get }
    /// The group size when the user gives none.
    var defaultGroupSize: Int { get }
    /// Throws (naming the option) when the layout cannot store such weights.
    func check(_ grid: AffineQuantizer.Options, actOrder: Bool) throws
    /// Names, dtypes and shapes of the tensors `entries` stores for one linear `prefix`
    /// `[rows(out), columns(in)]` on `grid`; nil when the layout cannot store that shape on it.
    func storedTensors(prefix: String, rows: Int, columns: Int, grid: GridScheme) -> [(name: String, dtype: DType, shape: [Int])]?
    /// Whether one folder may hold linears on different grids (and linears kept in f16).
    var mixesGrids: Bool { get }
    /// Whether its loaders fuse q/k/v and gate/up (`FusedLinears`), which must then share a grid.
    var fusesLinears: Bool { get }
    /// The stored tensors of one linear `prefix` ("model.layers.0.mlp.down_proj").
    func entries(prefix: String, _ layer: SolvedLinear, bits: Int) throws -> [SafetensorsWriter.Entry]
    /// The weight `[rows, columns]` a reader decodes from the stored form (f16 parameters).
    func decode(_ layer: SolvedLinear) -> [Float]
    /// Members config.json gets (replacing any of the same name) and extra JSON files.
    func configuration(_ settings: CheckpointSettings) -> (config: [(String, JSONValue)], files: [(name: String, json: JSONValue)])
    /// What a known loader refuses in a folder of this layout on `grid` (or on several grids, a
    /// recipe's or an allocation's, when `mixed`), said with the result; nil when none.
    func loaderNote(_ grid: AffineQuantizer.Options, actOrder: Bool, mixed: Bool) -> String?
}

extension CheckpointLayout {
    public func loaderNote(_ grid: AffineQuantizer.Options, actOrder: Bool, mixed: Bool) -> String? { nil }

    /// Bytes the stored tensors of one linear `[rows(out), columns(in)]` take on `grid`, nil when
    /// the layout cannot store that shape on it.
    public func byteCount(rows: Int, columns: Int, grid: GridScheme) -> Int? {
        storedTensors(prefix: "", rows: rows, columns: columns, grid: grid)?.reduce(0) { $0 + $1.shape.reduce($1.dtype.byteSize, *) }
    }
}

/// The registry of checkpoint layouts.
public enum CheckpointLayouts {
    public static let all: [CheckpointLayout] = [GPTQFolderLayout(), MLXFolderLayout(), AWQFolderLayout(), CompressedTensorsFolderLayout()]

    public static func named(_ name: String) -> CheckpointLayout? { all.first { $0.name == name } }
}

extension SafetensorsWriter.Entry {
    /// An F16 entry of fp32 values.
    static func f16(_ name: String, shape: [Int], _ values: [Float]) throws -> Self {
        try .init(name: name, dtype: .f16, shape: shape, data: CheckpointBytes.f16(values))
    }

    /// An I32/U32 entry of 32-bit words.
    static func words(_ name: String, dtype: DType, shape: [Int], _ words: [UInt32]) throws -> Self {
        try .init(name: name, dtype: dtype, shape: shape, data: CheckpointBytes.words(words))
    }
}

enum CheckpointBytes {
    static func words(_ words: [UInt32]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: words.count * 4)
        for (i, w) in words.enumerated() { for b in 0..<4 { out[4 * i + b] = UInt8(truncatingIfNeeded: w >> (8 * b)) } }
        return out
    }

    static func f16(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 2)
        for (i, v) in values.enumerated() {
            let h = HalfConversion.floatToF16(v)
            out[2 * i] = UInt8(truncatingIfNeeded: h)
            out[2 * i + 1] = UInt8(truncatingIfNeeded: h >> 8)
        }
        return out
    }
}
