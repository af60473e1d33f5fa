import QuantaCore

/// The GPTQModel / AutoGPTQ "gptq" (v1) layout of one linear weight `[out, in]`:
/// `qweight` int32 `[in * bits / 32, out]` (32/bits levels per word along the input dimension,
/// low bits first), `qzeros` int32 `[groups, out * bits / 32]` (zero points minus one along the
/// output dimension), `scales` f16 `[groups, out]`, `g_idx` int32 `[in]`. A weight is
/// `scales[g_idx[i], j] * (q[i, j] - (qzeros[g_idx[i], j] + 1))`. Bits 2, 4 and 8.
public enum GPTQLayout {
    public static let supportedBits = [2, 4, 8]

    /// qweight words from levels `[out(rows), in(columns)]`.
    public static func packLevels(_ levels: [Int32], rows: Int, columns: Int, bits: Int) -> [UInt32] {
        let per = 32 / bits
        var out = [UInt32](repeating: 0, count: columns / per * rows)
        for i in 0..<columns {
            let word = i / per, shift = UInt32(bits * (i % per))
            for j in 0..<rows { out[word * rows + j] |= UInt32(levels[j * columns + i]) << shift }
        }
        return out
    }

    /// qzeros words from zero points `[groups, rows]` (stored minus one, masked to `bits`).
    public static func packZeros(_ zeros: [Float], groups: Int, rows: Int, bits: Int) -> [UInt32] {
        let per = 32 / bits, mask = UInt32((1 << bits) - 1)
        var out = [UInt32](repeating: 0, count: groups * rows / per)
        for g in 0..<groups {
            for j in 0..<rows {
                let stored = UInt32(bitPattern: Int32(zeros[g * rows + j]) - 1) & mask
                out[g * (rows / per) + j / per] |= stored << UInt32(bits * (j % per))
            }
        }
        return out
    }

    /// The fp32 weight `[out, in]` of a stored layer; every count is checked against the others.
    public static func dequantize(qweight: Tensor<Int32>, qzeros: Tensor<Int32>, scales: Tensor<Float>, gIndex: Tensor<Int32>,
                                  bits: Int, name: String) throws -> Tensor<Float> {
        guard supportedBits.contains(bits) else { throw QuantaError.unsupported(name, "GPTQ layout with \(bits) bits is not read (2, 4 and 8 are)") }
        let per = 32 / bits, mask = UInt32((1 << bits) - 1)
        guard qweight.shape.count == 2, scales.shape.count == 2, qzeros.shape.count == 2, gIndex.shape.count == 1 else {
            throw QuantaError.malformed(name, "qweight, qzeros, scales must be 2-D and g_idx 1-D")
        }
        let (columns, rows, groups) = (gIndex.shape[0], qweight.shape[1], scales.shape[0])
        guard qweight.shape[0] * per == columns, scales.shape[1] == rows, qzeros.shape == [groups, rows / per], rows % per == 0 else {
            throw QuantaError.malformed(name, "shapes qweight \(qweight.shape), qzeros \(qzeros.shape), scales \(scales.shape), g_idx \(gIndex.shape) do not fit \(bits) bits")
        }
        if let bad = gIndex.storage.firstIndex(where: { $0 < 0 || Int($0) >= groups }) {
            throw QuantaError.malformed(name, "g_idx[\(bad)] = \(gIndex.storage[bad]) is outside \(groups) groups")
        }
        var out = [Float](repeating: 0, count: rows * columns)
        for i in 0..<columns {
            let g = Int(gIndex.storage[i]), word = i / per, shift = UInt32(bits * (i % per))
            for j in 0..<rows {
                let q = (UInt32(bitPattern: qweight.storage[word * rows + j]) >> shift) & mask
                let z = ((UInt32(bitPattern: qzeros.storage[g * (rows / per) + j / per]) >> UInt32(bits * (j % per))) & mask) + 1
                out[j * columns + i] = scales.storage[g * rows + j] * (Float(q) - Float(z))
            }
        }
        return try Tensor(shape: [rows, columns], storage: out)
    }
}
