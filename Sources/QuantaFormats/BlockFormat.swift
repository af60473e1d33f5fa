import QuantaCore

/// One GGML storage type: how rows are quantized (with or without importance weights) and read
/// back, and what llama.cpp's CPU backend pairs with it. Block sizes and row bytes come only
/// from the `GGMLType` traits table.
public protocol BlockFormat: Sendable {
    var type: GGMLType { get }
    /// The activation format of llama.cpp's dot products with this type (`vec_dot_type`:
    /// Q8_0/Q8_1/Q8_K blocks or f16/bf16); nil: activations stay fp32.
    var activationType: GGMLType? { get }
    /// Quanta writes this type (`quantizeRow` is implemented).
    var canQuantize: Bool { get }
    /// ggml refuses to produce this type without an importance matrix.
    var requiresImportance: Bool { get }
    /// An importance matrix changes the result (ggml ignores it for Q8_0 and the float types).
    var usesImportance: Bool { get }
    /// Quantizes one row of `n` values (whole blocks) into `type.rowBytes(n)` bytes at `y`;
    /// `importance` holds one weight per value when given. Input is finite (checked by the caller).
    func quantizeRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ n: Int,
                     importance: UnsafePointer<Float>?, _ scratch: QuantScratch)
    /// Dequantizes `blocks` whole blocks at `x` into `blocks * type.blockSize` values at `y`.
    func dequantize(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int)
    /// Encoding against parameters fitted beforehand (`quantizeRow` fits them); nil where Quanta
    /// has not split the type's quantizer yet.
    var codec: BlockCodec? { get }
}

/// A block format given by its two kernels: the form every built-in type takes, one entry in
/// its family's file (`LegacyQuants.swift`, `KQuants*.swift`, `IQ4Quants.swift`, ...).
public struct GGMLFormat: BlockFormat {
    public typealias RowQuantizer = @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<UInt8>, Int, UnsafePointer<Float>?, QuantScratch) -> Void
    public typealias Dequantizer = @Sendable (UnsafePointer<UInt8>, UnsafeMutablePointer<Float>, Int) -> Void

    public let type: GGMLType
    public let activationType: GGMLType?
    public let requiresImportance: Bool
    public let usesImportance: Bool
    let rowQuantizer: RowQuantizer?
    let dequantizer: Dequantizer
    public let codec: BlockCodec?

    /// `quantize` nil: read-only type. `usesImportance` defaults to "quantizable".
    public init(_ type: GGMLType, activation: GGMLType?, requiresImportance: Bool = false, usesImportance: Bool? = nil,
                quantize: RowQuantizer?, dequantize: @escaping Dequantizer, codec: BlockCodec? = nil) {
        self.type = type
        self.activationType = activation
        self.requiresImportance = requiresImportance
        self.usesImportance = usesImportance ?? (quantize != nil)
        self.rowQuantizer = quantize
        self.dequantizer = dequantize
        self.codec = codec
    }

    public var canQuantize: Bool { rowQuantizer != nil }

    public func quantizeRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ n: Int,
                            importance: UnsafePointer<Float>?, _ scratch: QuantScratch) {
        rowQuantizer!(x, y, n, importance, scratch)
    }

    public func dequantize(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        dequantizer(x, y, blocks)
    }
}

/// The registry of block formats: one line per type.
public enum BlockFormats {
    public static let all: [any BlockFormat] = [
        GGMLFormat.f32, GGMLFormat.f64, GGMLFormat.f16, GGMLFormat.bf16,
        GGMLFormat.q4_0, GGMLFormat.q4_1, GGMLFormat.q5_0, GGMLFormat.q5_1, GGMLFormat.q8_0, GGMLFormat.q8_1,
        GGMLFormat.q2_K, GGMLFormat.q3_K, GGMLFormat.q4_K, GGMLFormat.q5_K, GGMLFormat.q6_K,
        GGMLFormat.iq4_NL, GGMLFormat.iq4_XS,
        GGMLFormat.iq2_XXS, GGMLFormat.iq2_XS, GGMLFormat.iq2_S, GGMLFormat.iq3_XXS, GGMLFormat.iq3_S,
        GGMLFormat.iq1_S, GGMLFormat.iq1_M, GGMLFormat.tq1_0, GGMLFormat.tq2_0,
    ]

    private static let byType: [GGMLType: any BlockFormat] = Dictionary(uniqueKeysWithValues: all.map { ($0.type, $0) })

    /// The format of `type`, or nil when Quanta cannot read it.
    public static func format(_ type: GGMLType) -> (any BlockFormat)? { byType[type] }
}
