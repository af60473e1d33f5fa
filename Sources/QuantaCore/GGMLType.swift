/// Tensor element types of ggml, with their GGUF ids: the single source of truth for
/// block sizes and byte sizes (ggml `ggml-common.h` / `ggml.c` type_traits).
public enum GGMLType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22
    case iq4_XS = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_M = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// One row of the traits table.
    public struct Traits: Sendable {
        /// ggml's name ("Q4_K").
        public let name: String
        /// Elements per block; 1 for plain types.
        public let blockSize: Int
        /// Bytes per block.
        public let bytesPerBlock: Int
    }

    /// The traits table. Sizes are ggml's `static_assert`ed struct sizes.
    public var traits: Traits {
        switch self {
        case .f32: Traits(name: "F32", blockSize: 1, bytesPerBlock: 4)
        case .f16: Traits(name: "F16", blockSize: 1, bytesPerBlock: 2)
        case .q4_0: Traits(name: "Q4_0", blockSize: 32, bytesPerBlock: 18)
        case .q4_1: Traits(name: "Q4_1", blockSize: 32, bytesPerBlock: 20)
        case .q5_0: Traits(name: "Q5_0", blockSize: 32, bytesPerBlock: 22)
        case .q5_1: Traits(name: "Q5_1", blockSize: 32, bytesPerBlock: 24)
        case .q8_0: Traits(name: "Q8_0", blockSize: 32, bytesPerBlock: 34)
        case .q8_1: Traits(name: "Q8_1", blockSize: 32, bytesPerBlock: 36)
        case .q2_K: Traits(name: "Q2_K", blockSize: 256, bytesPerBlock: 84)
        case .q3_K: Traits(name: "Q3_K", blockSize: 256, bytesPerBlock: 110)
        case .q4_K: Traits(name: "Q4_K", blockSize: 256, bytesPerBlock: 144)
        case .q5_K: Traits(name: "Q5_K", blockSize: 256, bytesPerBlock: 176)
        case .q6_K: Traits(name: "Q6_K", blockSize: 256, bytesPerBlock: 210)
        case .q8_K: Traits(name: "Q8_K", blockSize: 256, bytesPerBlock: 292)
        case .iq2_XXS: Traits(name: "IQ2_XXS", blockSize: 256, bytesPerBlock: 66)
        case .iq2_XS: Traits(name: "IQ2_XS", blockSize: 256, bytesPerBlock: 74)
        case .iq3_XXS: Traits(name: "IQ3_XXS", blockSize: 256, bytesPerBlock: 98)
        case .iq1_S: Traits(name: "IQ1_S", blockSize: 256, bytesPerBlock: 50)
        case .iq4_NL: Traits(name: "IQ4_NL", blockSize: 32, bytesPerBlock: 18)
        case .iq3_S: Traits(name: "IQ3_S", blockSize: 256, bytesPerBlock: 110)
        case .iq2_S: Traits(name: "IQ2_S", blockSize: 256, bytesPerBlock: 82)
        case .iq4_XS: Traits(name: "IQ4_XS", blockSize: 256, bytesPerBlock: 136)
        case .i8: Traits(name: "I8", blockSize: 1, bytesPerBlock: 1)
        case .i16: Traits(name: "I16", blockSize: 1, bytesPerBlock: 2)
        case .i32: Traits(name: "I32", blockSize: 1, bytesPerBlock: 4)
        case .i64: Traits(name: "I64", blockSize: 1, bytesPerBlock: 8)
        case .f64: Traits(name: "F64", blockSize: 1, bytesPerBlock: 8)
        case .iq1_M: Traits(name: "IQ1_M", blockSize: 256, bytesPerBlock: 56)
        case .bf16: Traits(name: "BF16", blockSize: 1, bytesPerBlock: 2)
        case .tq1_0: Traits(name: "TQ1_0", blockSize: 256, bytesPerBlock: 54)
        case .tq2_0: Traits(name: "TQ2_0", blockSize: 256, bytesPerBlock: 66)
        case .mxfp4: Traits(name: "MXFP4", blockSize: 32, bytesPerBlock: 17)
        case .nvfp4: Traits(name: "NVFP4", blockSize: 64, bytesPerBlock: 36)
        case .q1_0: Traits(name: "Q1_0", blockSize: 128, bytesPerBlock: 18)
        }
    }

    public var name: String { traits.name }
    public var blockSize: Int { traits.blockSize }
    public var bytesPerBlock: Int { traits.bytesPerBlock }
    /// Storage bits per weight (8 * bytes per block / block size).
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    /// The type named `name` (case-insensitive), or nil.
    public init?(name: String) {
        let upper = name.uppercased()
        guard let found = GGMLType.allCases.first(where: { $0.name == upper }) else { return nil }
        self = found
    }

    /// Bytes of `elements` values stored as whole blocks (the one size formula; callers check
    /// that rows are whole blocks, see `rowBytes`).
    public func byteCount(elements: Int) -> Int { elements / blockSize * bytesPerBlock }

    /// Bytes of a tensor of `dimensions` (any order).
    public func byteCount(dimensions: [Int]) -> Int { byteCount(elements: dimensions.reduce(1, *)) }

    /// Bytes of a row of `count` elements, or nil when `count` is not a multiple of the block size.
    public func rowBytes(_ count: Int) -> Int? {
        count % blockSize == 0 ? byteCount(elements: count) : nil
    }
}
