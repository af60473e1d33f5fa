import QuantaCore

/// compressed-tensors' `pack-quantized` layout of one linear weight `[out, in]` (llm-compressor's
/// output, which vLLM and transformers load; 4 and 8 bits): `weight_packed` int32
/// `[out, in * bits / 32]`, each row's values one little-endian bit stream of u = q + 2^(bits-1)
/// (q signed); `weight_scale` `[out, groups]` (1 group per row for the channel strategy) in the
/// model's dtype; for asymmetric schemes `weight_zero_point` int32 `[out * bits / 32, groups]`,
/// the zero points (also offset by 2^(bits-1)) packed the same way along the output dimension;
/// `weight_shape` int64 `[out, in]`. A weight is `round_dtype(scale * (u - zu))` (zu = 2^(bits-1)
/// without zero points), rounded to the scale's dtype as torch computes it.
public enum CompressedTensorsLayout {
    public static let supportedBits = [4, 8]

    /// Zero points `[groups, rows]` (unsigned, as stored before packing) into `[rows * bits / 32, groups]` words.
    public static func packZeros(_ zeros: [Int32], groups: Int, rows: Int, bits: Int) -> [UInt32] {
        let packed = MLXLayout.pack(zeros, rows: groups, columns: rows, bits: bits)   // [groups, rows * bits / 32]
        let width = rows * bits / 32
        var out = [UInt32](repeating: 0, count: width * groups)
        for g in 0..<groups { for k in 0..<width { out[k * groups + g] = packed[g * width + k] } }
        return out
    }

    /// The fp32 weight `[out, in]` of a stored layer; `groupSize` nil for the channel strategy;
    /// `precision` is the scale's stored dtype. Every shape is checked against the others.
    public static func dequantize(packed: Tensor<Int32>, scale: Tensor<Float>, zeroPoint: Tensor<Int32>?, shape: [Int], bits: Int,
                                  groupSize: Int?, precision: DType, name: String) throws -> Tensor<Float> {
        guard supportedBits.contains(bits), shape.count == 2, shape.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }) else {
            throw QuantaError.malformed(name, "weight_shape \(shape) with \(bits) bits is not a pack-quantized linear Quanta reads")
        }
        let (rows, columns) = (shape[0], shape[1])
        let size = groupSize ?? columns
        guard size > 0, columns % size == 0, columns * bits % 32 == 0, packed.shape == [rows, columns * bits / 32],
              scale.shape == [rows, columns / size] else {
            throw QuantaError.malformed(name, "shapes weight_packed \(packed.shape), weight_scale \(scale.shape) do not fit \(shape) at \(bits) bits in groups of \(size)")
        }
        let groups = columns / size, offset = Int32(1 << (bits - 1))
        let levels = MLXLayout.unpack(packed.storage.map { UInt32(bitPattern: $0) }, rows: rows, columns: columns, bits: bits)
        var zeros = [Int32](repeating: offset, count: rows * groups)   // [rows, groups]
        if let zeroPoint {
            guard rows * bits % 32 == 0, zeroPoint.shape == [rows * bits / 32, groups] else {
                throw QuantaError.malformed(name, "weight_zero_point \(zeroPoint.shape) does not fit \(rows) rows in \(groups) groups")
            }
            var byGroup = [UInt32](repeating: 0, count: groups * rows * bits / 32)
            let width = rows * bits / 32
            for k in 0..<width { for g in 0..<groups { byGroup[g * width + k] = UInt32(bitPattern: zeroPoint.storage[k * groups + g]) } }
            let unpacked = MLXLayout.unpack(byGroup, rows: groups, columns: rows, bits: bits)   // [groups, rows]
            for g in 0..<groups { for r in 0..<rows { zeros[r * groups + g] = unpacked[g * rows + r] } }
        }
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let g = r * groups + c / size
                out[r * columns + c] = round(scale.storage[g] * Float(levels[r * columns + c] - zeros[g]), precision)
            }
        }
        return try Tensor(shape: [rows, columns], storage: out)
    }

    /// `v` rounded to `precision` (f16, bf16) as a torch product in that dtype is.
    @inline(__always)
    public static func round(_ v: Float, _ precision: DType) -> Float {
        switch precision {
        case .f16: HalfConversion.roundedToF16(v)
        case .bf16: HalfConversion.roundedToBF16(v)
        default: v
        }
    }
}
