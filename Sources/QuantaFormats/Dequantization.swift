import QuantaCore

extension Quantization {
    /// Types Quanta reads back to fp32.
    public static func canDequantize(_ type: GGMLType) -> Bool {
        ![.i8, .i16, .i32, .i64, .q8_K, .mxfp4, .nvfp4, .q1_0].contains(type)
    }

    /// Dequantizes `count` values (a multiple of the block size) stored in `x` into `y`.
    public static func dequantize(_ type: GGMLType, _ x: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) throws {
        guard count % type.blockSize == 0 else {
            throw QuantaError(.invalidArgument, type.name, "\(count) values are not whole blocks of \(type.blockSize)")
        }
        let blocks = count / type.blockSize
        let q = x.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32: for i in 0..<count { y[i] = Float(bitPattern: UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f64: for i in 0..<count { y[i] = Float(Double(bitPattern: UInt64(littleEndian: x.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .f16: for i in 0..<count { y[i] = q.halfFloat(at: 2 * i) }
        case .bf16: for i in 0..<count { y[i] = HalfConversion.bf16ToFloat(q.half(at: 2 * i)) }
        case .q4_0: LegacyQuants.dequantizeQ4_0(q, y, blocks: blocks)
        case .q4_1: LegacyQuants.dequantizeQ4_1(q, y, blocks: blocks)
        case .q5_0: LegacyQuants.dequantizeQ5(q, y, blocks: blocks, hasMin: false)
        case .q5_1: LegacyQuants.dequantizeQ5(q, y, blocks: blocks, hasMin: true)
        case .q8_0: LegacyQuants.dequantizeQ8_0(q, y, blocks: blocks)
        case .q8_1: LegacyQuants.dequantizeQ8_1(q, y, blocks: blocks)
        case .q2_K: KQuantsLow.dequantizeQ2_K(q, y, blocks: blocks)
        case .q3_K: KQuantsLow.dequantizeQ3_K(q, y, blocks: blocks)
        case .q4_K: KQuantsHigh.dequantizeQ4_K(q, y, blocks: blocks)
        case .q5_K: KQuantsHigh.dequantizeQ5_K(q, y, blocks: blocks)
        case .q6_K: KQuantsHigh.dequantizeQ6_K(q, y, blocks: blocks)
        case .iq4_NL: IQ4Quants.dequantizeIQ4_NL(q, y, blocks: blocks)
        case .iq4_XS: IQ4Quants.dequantizeIQ4_XS(q, y, blocks: blocks)
        case .iq2_XXS: IQDequant.iq2xxs(q, y, blocks: blocks)
        case .iq2_XS: IQDequant.iq2xs(q, y, blocks: blocks)
        case .iq2_S: IQDequant.iq2s(q, y, blocks: blocks)
        case .iq3_XXS: IQDequant.iq3xxs(q, y, blocks: blocks)
        case .iq3_S: IQDequant.iq3s(q, y, blocks: blocks)
        case .iq1_S: IQDequant.iq1s(q, y, blocks: blocks)
        case .iq1_M: IQDequant.iq1m(q, y, blocks: blocks)
        case .tq1_0: IQDequant.tq1(q, y, blocks: blocks)
        case .tq2_0: IQDequant.tq2(q, y, blocks: blocks)
        default:
            throw QuantaError.unsupported(type.name, "Quanta cannot read \(type.name) tensors yet")
        }
    }

    /// Dequantizes a whole tensor's bytes.
    public static func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
        let needed = count / type.blockSize * type.bytesPerBlock
        guard bytes.count >= needed else {
            throw QuantaError(.invalidArgument, type.name, "\(count) values need \(needed) bytes, got \(bytes.count)")
        }
        var out = [Float](repeating: 0, count: count)
        if count > 0 {
            try out.withUnsafeMutableBufferPointer { try dequantize(type, bytes.baseAddress!, count: count, into: $0.baseAddress!) }
        }
        return out
    }
}
