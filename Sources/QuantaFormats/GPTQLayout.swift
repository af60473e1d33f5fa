import QuantaCore

/// The GPTQModel / AutoGPTQ "gptq" (v1) layout of one linear weight `[out, in]`:
/// `qweight` int32 `[in * bits / 32, out]` (32/bits levels per word along the input dimension,
/// low bits first), `qzeros` int32 `[groups, out * bits / 32]` (zero points minus one along the
/// output dimension), `scales` f16 `[groups, out]`, `g_idx` int32 `[in]`. A weight is
/// `scales[g_idx[i], j] * (q[i, j] - (qzeros[g_idx[i], j] + 1))`. Bits 2, 3, 4 and 8: along the
/// packed dimension the levels form one little-endian bit stream, level v at bit `bits * v`
/// (for 3 bits a level may straddle two words, exactly as AutoGPTQ's 10 + 1 + 10 + 1 + 10 packing).
public enum GPTQLayout {
    public static let supportedBits = [2, 3, 4, 8]

    /// ORs `value` (`bits` wide) into the stream of `words` (stride `stride` between words) at level `v`.
    @inline(__always)
    static func put(_ value: UInt32, _ v: Int, bits: Int, into words: UnsafeMutablePointer<UInt32>, stride: Int) {
        let bit = bits * v, word = bit / 32, shift = bit % 32
        words[word * stride] |= value << UInt32(shift)
        if shift + bits > 32 { words[(word + 1) * stride] |= value >> UInt32(32 - shift) }
    }

    /// Level `v` of a stream of `words` (stride `stride`).
    @inline(__always)
    static func get(_ v: Int, bits: Int, from words: UnsafePointer<Int32>, stride: Int) -> UInt32 {
        let bit = bits * v, word = bit / 32, shift = bit % 32, mask = UInt32((1 << bits) - 1)
        var value = UInt32(bitPattern: words[word * stride]) >> UInt32(shift)
        if shift + bits > 32 { value |= UInt32(bitPattern: words[(word + 1) * stride]) << UInt32(32 - shift) }
        return value & mask
    }

    /// qweight words `[columns * bits / 32, rows]` from levels `[out(rows), in(columns)]`.
    public static func packLevels(_ levels: [Int32], rows: Int, columns: Int, bits: Int) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: columns * bits / 32 * rows)
        out.withUnsafeMutableBufferPointer { o in
            for j in 0..<rows {
                for i in 0..<columns { put(UInt32(levels[j * columns + i]), i, bits: bits, into: o.baseAddress! + j, stride: rows) }
            }
        }
        return out
    }

    /// qzeros words `[groups, rows * bits / 32]` from zero points `[groups, rows]` (stored minus one, masked to `bits`).
    public static func packZeros(_ zeros: [Float], groups: Int, rows: Int, bits: Int) -> [UInt32] {
        let mask = UInt32((1 << bits) - 1), width = rows * bits / 32
        var out = [UInt32](repeating: 0, count: groups * width)
        out.withUnsafeMutableBufferPointer { o in
            for g in 0..<groups {
                for j in 0..<rows {
                    put(UInt32(bitPattern: Int32(zeros[g * rows + j]) - 1) & mask, j, bits: bits, into: o.baseAddress! + g * width, stride: 1)
                }
            }
        }
        return out
    }

    /// The fp32 weight `[out, in]` of a stored layer; every count is checked against the others.
    public static func dequantize(qweight: Tensor<Int32>, qzeros: Tensor<Int32>, scales: Tensor<Float>, gIndex: Tensor<Int32>,
                                  bits: Int, name: String) throws -> Tensor<Float> {
        guard supportedBits.contains(bits) else { throw QuantaError.unsupported(name, "GPTQ layout with \(bits) bits is not read (2, 3, 4 and 8 are)") }
        guard qweight.shape.count == 2, scales.shape.count == 2, qzeros.shape.count == 2, gIndex.shape.count == 1 else {
            throw QuantaError.malformed(name, "qweight, qzeros, scales must be 2-D and g_idx 1-D")
        }
        let (columns, rows, groups) = (gIndex.shape[0], qweight.shape[1], scales.shape[0])
        guard columns * bits % 32 == 0, rows * bits % 32 == 0, qweight.shape[0] == columns * bits / 32, scales.shape[1] == rows,
              qzeros.shape == [groups, rows * bits / 32] else {
            throw QuantaError.malformed(name, "shapes qweight \(qweight.shape), qzeros \(qzeros.shape), scales \(scales.shape), g_idx \(gIndex.shape) do not fit \(bits) bits")
        }
        if let bad = gIndex.storage.firstIndex(where: { $0 < 0 || Int($0) >= groups }) {
            throw QuantaError.malformed(name, "g_idx[\(bad)] = \(gIndex.storage[bad]) is outside \(groups) groups")
        }
        var out = [Float](repeating: 0, count: rows * columns)
        let width = rows * bits / 32
        qweight.storage.withUnsafeBufferPointer { q in
            qzeros.storage.withUnsafeBufferPointer { z in
                for i in 0..<columns {
                    let g = Int(gIndex.storage[i])
                    for j in 0..<rows {
                        let level = get(i, bits: bits, from: q.baseAddress! + j, stride: rows)
                        let zero = get(j, bits: bits, from: z.baseAddress! + g * width, stride: 1) + 1
                        out[j * columns + i] = scales.storage[g * rows + j] * (Float(level) - Float(zero))
                    }
                }
            }
        }
        return try Tensor(shape: [rows, columns], storage: out)
    }
}
