import QuantaCore

/// MLX's affine layout of one linear weight `[out, in]` (`mx.quantize`, mode "affine"):
/// `weight` uint32 `[out, in * bits / 32]`, each row's levels one little-endian bit stream
/// (level i at bit `bits * i`; for 3, 5 and 6 bits a level may straddle two words),
/// `scales` and `biases` `[out, in / groupSize]`; a weight is `scales[j, i / g] * q[j, i] +
/// biases[j, i / g]`, computed as MLX does in the scales' dtype: with f16 (bf16) scales the
/// product is rounded to f16 (bf16) and so is the sum. Groups are contiguous runs of
/// `groupSize` input columns.
public enum MLXLayout {
    public static let supportedBits = [2, 3, 4, 5, 6, 8]
    public static let supportedGroupSizes = [32, 64, 128]

    /// The packed words `[rows, columns * bits / 32]` of levels `[rows, columns]` (each in 0..<2^bits).
    public static func pack(_ levels: [Int32], rows: Int, columns: Int, bits: Int) -> [UInt32] {
        let width = columns * bits / 32
        var out = [UInt32](repeating: 0, count: rows * width)
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows {
                let row = o.baseAddress! + r * width
                for i in 0..<columns { GPTQLayout.put(UInt32(levels[r * columns + i]), i, bits: bits, into: row, stride: 1) }
            }
        }
        return out
    }

    /// The levels `[rows, columns]` of packed words.
    public static func unpack(_ words: [UInt32], rows: Int, columns: Int, bits: Int) -> [Int32] {
        let width = columns * bits / 32
        var out = [Int32](repeating: 0, count: rows * columns)
        words.withUnsafeBufferPointer { $0.withMemoryRebound(to: Int32.self) { w in
            for r in 0..<rows {
                for i in 0..<columns { out[r * columns + i] = Int32(GPTQLayout.get(i, bits: bits, from: w.baseAddress! + r * width, stride: 1)) }
            }
        } }
        return out
    }

    /// The fp32 weight `[out, in]` of a stored layer, every shape checked against the others.
    /// `name` prefixes errors.
    /// `precision` is the scales' stored dtype (f32, f16 or bf16).
    public static func dequantize(weight: Tensor<UInt32>, scales: Tensor<Float>, biases: Tensor<Float>, bits: Int, groupSize: Int,
                                  precision: DType = .f32, name: String) throws -> Tensor<Float> {
        guard supportedBits.contains(bits), groupSize > 0 else {
            throw QuantaError.unsupported(name, "MLX layout with \(bits) bits and groups of \(groupSize) is not read")
        }
        guard weight.shape.count == 2, scales.shape.count == 2, biases.shape == scales.shape else {
            throw QuantaError.malformed(name, "weight and scales must be 2-D and biases shaped as scales")
        }
        let rows = weight.shape[0], words = weight.shape[1]
        let (columns, overflow) = words.multipliedReportingOverflow(by: 32)
        guard !overflow, columns % bits == 0, columns / bits % groupSize == 0, scales.shape == [rows, columns / bits / groupSize] else {
            throw QuantaError.malformed(name, "shapes weight \(weight.shape), scales \(scales.shape) do not fit \(bits) bits in groups of \(groupSize)")
        }
        let n = columns / bits, groups = n / groupSize
        let levels = unpack(weight.storage, rows: rows, columns: n, bits: bits)
        var out = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows {
            for i in 0..<n {
                let g = r * groups + i / groupSize
                out[r * n + i] = value(scales.storage[g], levels[r * n + i], biases.storage[g], precision)
            }
        }
        return try Tensor(shape: [rows, n], storage: out)
    }

    /// One weight as MLX computes it in `precision`: round(round(scale * level) + bias).
    @inline(__always)
    public static func value(_ scale: Float, _ level: Int32, _ bias: Float, _ precision: DType) -> Float {
        switch precision {
        case .f16: HalfConversion.roundedToF16(HalfConversion.roundedToF16(scale * Float(level)) + bias)
        case .bf16: HalfConversion.roundedToBF16(HalfConversion.roundedToBF16(scale * Float(level)) + bias)
        default: scale * Float(level) + bias
        }
    }
}
