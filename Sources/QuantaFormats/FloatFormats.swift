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
        // HalfConversion.floatToBF16 sixteen lanes at a time (same integer operations; NaN found by
        // a float comparison, which compiles to one vector instruction where an integer one does not).
        let source = UnsafeRawPointer(x), out = UnsafeMutableRawPointer(y)
        var i = 0
        while i + 16 <= n {
            let values = source.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            let bits = unsafeBitCast(values, to: SIMD16<UInt32>.self)
            let nan = unsafeBitCast(values .!= values, to: SIMD16<UInt32>.self)
            let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
            let quiet = (bits &>> 16) | 0x0040
            let halves = SIMD16<UInt16>(truncatingIfNeeded: rounded ^ ((rounded ^ quiet) & nan))
            out.storeBytes(of: halves, toByteOffset: 2 * i, as: SIMD16<UInt16>.self)
            i += 16
        }
        for j in i..<n { y.storeHalf(HalfConversion.floatToBF16(x[j]), at: 2 * j) }
    }, dequantize: { q, y, count in
        for i in 0..<count { y[i] = HalfConversion.bf16ToFloat(q.half(at: 2 * i)) }
    })
}
