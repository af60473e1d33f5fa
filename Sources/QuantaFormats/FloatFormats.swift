import QuantaCore

// Plain float storage: F32, F64 (read only), F16, BF16 (round to nearest even, as ggml).

extension GGMLFormat {
    public static let f32 = GGMLFormat(.f32, activation: nil, usesImportance: false, quantize: { x, y, n, _, _ in
        for i in 0..<n { y.advanced(by: 4 * i).withMemoryRebound(to: UInt32.self, capacity: 1) { $0.pointee = x[i].bitPattern.littleEndian } }
    }, dequantize: { q, y, count in
        for i in 0..<count { y[i] = Float(bitPattern: UInt32(littleEndian: UnsafeRawPointer(q).loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    })

    public static let f64 = GGMLFormat(.f64, activation: nil, quantize: nil, dequantize: { q, y, count in
        for i in 0..<count { y[i] = Float(Double(bitPattern: UInt64(littleEndian: UnsafeRawPointer(q).loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    })

    public static let f16 = GGMLFormat(.f16, activation: .f16, usesImportance: false, quantize: { x, y, n, _, _ in
        // Swift's Float16 conversion rounds as HalfConversion.floatToF16 does (HalfConversionTests)
        // and compiles to the hardware's vector conversion where there is one. Inputs are finite.
        let out = UnsafeMutableRawPointer(y)
        for i in 0..<n { out.storeBytes(of: Float16(x[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    }, dequantize: { q, y, count in
        for i in 0..<count { y[i] = q.halfFloat(at: 2 * i) }
    })

    public static let bf16 = GGMLFormat(.bf16, activation: .bf16, usesImportance: false, quantize: { x, y, n, _, _ in
        for i in 0..<n { y.storeHalf(HalfConversion.floatToBF16(x[i]), at: 2 * i) }
    }, dequantize: { q, y, count in
        for i in 0..<count { y[i] = HalfConversion.bf16ToFloat(q.half(at: 2 * i)) }
    })
}
