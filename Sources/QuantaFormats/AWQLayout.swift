import QuantaCore

/// AutoAWQ's GEMM layout of one linear weight `[out, in]` (4 bits; what transformers and vLLM
/// load as `quant_method: awq, version: gemm`): `qweight` int32 `[in, out / 8]`, eight output
/// columns per word in the interleaved order 0, 2, 4, 6, 1, 3, 5, 7 (nibble p, at bits 4p, holds
/// column 8c + order[p]); `qzeros` int32 `[groups, out / 8]`, the zero points packed the same way
/// (not minus one); `scales` f16 `[groups, out]`; groups are contiguous runs of input columns. A
/// weight is `scales[i / g, j] * (q[i, j] - z[i / g, j])`.
public enum AWQLayout {
    public static let bits = 4
    /// Nibble p of a word holds column `order[p]` of its eight.
    public static let order = [0, 2, 4, 6, 1, 3, 5, 7]
    /// Column k of eight sits in nibble `position[k]`.
    static let position = [0, 4, 1, 5, 2, 6, 3, 7]

    /// Words `[rows, columns / 8]` of 4-bit values `[rows, columns]` (row-major), AutoAWQ's order.
    public static func pack(_ values: [Int32], rows: Int, columns: Int) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: rows * columns / 8)
        for r in 0..<rows {
            for c in 0..<columns {
                out[r * columns / 8 + c / 8] |= (UInt32(values[r * columns + c]) & 15) << UInt32(4 * position[c % 8])
            }
        }
        return out
    }

    /// The 4-bit values `[rows, columns]` of packed words.
    public static func unpack(_ words: [Int32], rows: Int, columns: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                out[r * columns + c] = Int32((UInt32(bitPattern: words[r * columns / 8 + c / 8]) >> UInt32(4 * position[c % 8])) & 15)
            }
        }
        return out
    }

    /// The fp32 weight `[out, in]` of a stored layer, every shape checked against the others.
    public static func dequantize(qweight: Tensor<Int32>, qzeros: Tensor<Int32>, scales: Tensor<Float>, groupSize: Int, name: String) throws -> Tensor<Float> {
        guard qweight.shape.count == 2, qzeros.shape.count == 2, scales.shape.count == 2, groupSize > 0 else {
            throw QuantaError.malformed(name, "qweight, qzeros and scales must be 2-D, the group size positive")
        }
        let (columns, rows, groups) = (qweight.shape[0], scales.shape[1], scales.shape[0])
        guard qweight.shape[1] * 8 == rows, qzeros.shape == [groups, rows / 8], columns % groupSize == 0, columns / groupSize == groups else {
            throw QuantaError.malformed(name, "shapes qweight \(qweight.shape), qzeros \(qzeros.shape), scales \(scales.shape) do not fit groups of \(groupSize)")
        }
        let levels = unpack(qweight.storage, rows: columns, columns: rows)
        let zeros = unpack(qzeros.storage, rows: groups, columns: rows)
        var out = [Float](repeating: 0, count: rows * columns)
        for i in 0..<columns {
            let g = i / groupSize
            for j in 0..<rows {
                out[j * columns + i] = scales.storage[g * rows + j] * (Float(levels[i * rows + j]) - Float(zeros[g * rows + j]))
            }
        }
        return try Tensor(shape: [rows, columns], storage: out)
    }
}
