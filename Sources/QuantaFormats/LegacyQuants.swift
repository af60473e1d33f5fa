import QuantaCore

// The original ggml block formats (blocks of 32): reference quantizers (`quantize_row_*_ref`),
// the importance-weighted variants (`quantize_row_*_impl`) and dequantizers.
// Block layouts (bytes): Q4_0 d:f16 qs[16]; Q4_1 d,m:f16 qs[16]; Q5_0 d qh:u32 qs[16];
// Q5_1 d,m qh qs[16]; Q8_0 d qs:i8[32]; Q8_1 d,s qs:i8[32].

enum LegacyQuants {
    static func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 18 * i
            let max = maxByMagnitude(xb, 32).value
            let d = max / -8
            let id: Float = d != 0 ? 1 / d : 0
            yb.storeHalf(fp16(d), at: 0)
            for j in 0..<16 {
                let x0 = xb[j] * id, x1 = xb[16 + j] * id
                let q0 = UInt8(truncatingIfNeeded: Swift.min(15, Int(Int8(truncatingIfNeeded: cInt(x0 + 8.5)))))
                let q1 = UInt8(truncatingIfNeeded: Swift.min(15, Int(Int8(truncatingIfNeeded: cInt(x1 + 8.5)))))
                yb[2 + j] = q0 | q1 << 4
            }
        }
    }

    /// Q4_1/Q5_1 block scale: d = (max - min) / levels and m = min stored as f16 at bytes 0 and 2;
    /// returns min and 1/d (0 for a flat block).
    @inline(__always)
    static func storeAffineScale(_ xb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, levels: Float) -> (min: Float, id: Float) {
        var min = Float.greatestFiniteMagnitude, max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if xb[j] < min { min = xb[j] }
            if xb[j] > max { max = xb[j] }
        }
        let d = (max - min) / levels
        yb.storeHalf(fp16(d), at: 0)
        yb.storeHalf(fp16(min), at: 2)
        return (min, d != 0 ? 1 / d : 0)
    }

    static func quantizeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 20 * i
            let (min, id) = storeAffineScale(xb, yb, levels: 15)
            for j in 0..<16 {
                let x0 = (xb[j] - min) * id, x1 = (xb[16 + j] - min) * id
                let q0 = UInt8(truncatingIfNeeded: Swift.min(15, Int(Int8(truncatingIfNeeded: cInt(x0 + 0.5)))))
                let q1 = UInt8(truncatingIfNeeded: Swift.min(15, Int(Int8(truncatingIfNeeded: cInt(x1 + 0.5)))))
                yb[4 + j] = q0 | q1 << 4
            }
        }
    }

    static func quantizeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, _ s: QuantScratch) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 22 * i
            let max = maxByMagnitude(xb, 32).value
            let d = max / -16
            let id: Float = d != 0 ? 1 / d : 0
            yb.storeHalf(fp16(d), at: 0)
            let L = s.L
            for j in 0..<32 {
                L[j] = UInt8(truncatingIfNeeded: Swift.min(31, Int(Int8(truncatingIfNeeded: cInt(xb[j] * id + 16.5)))))
            }
            packQ5(L, yb + 2)
        }
    }

    static func quantizeQ5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, _ s: QuantScratch) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 24 * i
            let (min, id) = storeAffineScale(xb, yb, levels: 31)
            let L = s.L
            for j in 0..<32 { L[j] = UInt8(truncatingIfNeeded: cInt((xb[j] - min) * id + 0.5)) }
            packQ5(L, yb + 4)
        }
    }

    /// qh (u32, bit j = 5th bit of quant j) then 16 bytes of low nibbles (j | j+16 << 4).
    @inline(__always)
    static func packQ5(_ L: UnsafePointer<UInt8>, _ out: UnsafeMutablePointer<UInt8>) {
        var qh: UInt32 = 0
        for j in 0..<16 {
            out[4 + j] = (L[j] & 0x0F) | (L[j + 16] & 0x0F) << 4
            qh |= UInt32((L[j] & 0x10) >> 4) << j
            qh |= UInt32((L[j + 16] & 0x10) >> 4) << (j + 16)
        }
        for b in 0..<4 { out[b] = UInt8(truncatingIfNeeded: qh >> (8 * b)) }
    }

    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 34 * i
            var amax: Float = 0
            for j in 0..<32 { amax = Swift.max(amax, abs(xb[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            yb.storeHalf(fp16(d), at: 0)
            for j in 0..<32 { yb[2 + j] = UInt8(truncatingIfNeeded: cInt((xb[j] * id).rounded())) }
        }
    }

    static func quantizeQ8_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 36 * i
            var amax: Float = 0
            for j in 0..<32 { amax = Swift.max(amax, abs(xb[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            yb.storeHalf(fp16(d), at: 0)
            var sum = 0
            for j in 0..<32 {
                let q = Int8(truncatingIfNeeded: cInt((xb[j] * id).rounded()))
                yb[4 + j] = UInt8(bitPattern: q)
                sum += Int(q)
            }
            yb.storeHalf(fp16(Float(sum) * d), at: 2)
        }
    }

    // MARK: importance-weighted variants (one row of `n` values, `qw` per column)

    /// Mean square of a row, the σ² that scales ggml's importance weights.
    static func meanSquare(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for j in 0..<n { sum += x[j] * x[j] }
        return sum / Float(n)
    }

    /// Q4_0 and Q5_0 with importance: 16 blocks of a row searched side by side (`GroupLanes.makeQX`);
    /// `body(k, ib)` stores the k-th block of each batch (block `ib` of the row).
    @inline(__always)
    private static func symmetricBatches(_ x: UnsafePointer<Float>, n: Int, qw: UnsafePointer<Float>, nmax: Int, _ s: QuantScratch,
                                         body: (Int, Int) -> Void) {
        let sigma2 = meanSquare(x, n)
        s.lanes.batches(of: n / 32, length: 32, load: { k, ib in
            importanceWeights(x + 32 * ib, qw + 32 * ib, sigma2: sigma2, s.weights, 32)
            s.lanes.load(lane: k, x + 32 * ib, s.weights, 32)
        }, search: { s.lanes.makeQX(32, nmax, weighted: true) }, finish: body)
    }

    /// Q4_1 and Q5_1 with importance: 16 blocks of a row at a time through `searchQKX`;
    /// `body(k, ib)` stores the k-th block of each batch from `s.scales`, `s.mins` and `s.L`.
    @inline(__always)
    private static func affineBatches(_ x: UnsafePointer<Float>, n: Int, qw: UnsafePointer<Float>, nmax: Int, _ s: QuantScratch,
                                      body: (Int, Int) -> Void) {
        let sigma2 = meanSquare(x, n), blocks = n / 32
        for first in stride(from: 0, to: blocks, by: GroupLanes.width) {
            let count = Swift.min(GroupLanes.width, blocks - first)
            s.searchQKX(x + 32 * first, count: count, n: 32, nmax: nmax, rmin: -0.9, rdelta: 0.05, nstep: 36, useMAD: false) { k, weight in
                importanceWeights(x + 32 * (first + k), qw + 32 * (first + k), sigma2: sigma2, weight, 32)
            }
            for k in 0..<count { body(k, first + k) }
        }
    }

    static func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>, _ s: QuantScratch) {
        let L = s.Li
        symmetricBatches(x, n: n, qw: qw, nmax: 8, s) { k, ib in
            let yb = y + 18 * ib
            s.lanes.storeLevels(lane: k, L, 32)
            yb.storeHalf(fp16(s.lanes.scale[k]), at: 0)
            for j in 0..<16 { yb[2 + j] = UInt8(L[j]) | UInt8(L[j + 16]) << 4 }
        }
    }

    static func quantizeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>, _ s: QuantScratch) {
        affineBatches(x, n: n, qw: qw, nmax: 15, s) { k, ib in
            let yb = y + 20 * ib, L = s.L + 32 * k
            yb.storeHalf(fp16(s.scales[k]), at: 0)
            yb.storeHalf(fp16(-s.mins[k]), at: 2)
            for j in 0..<16 { yb[4 + j] = L[j] | L[j + 16] << 4 }
        }
    }

    static func quantizeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>, _ s: QuantScratch) {
        let L = s.Li
        symmetricBatches(x, n: n, qw: qw, nmax: 16, s) { k, ib in
            let yb = y + 22 * ib
            s.lanes.storeLevels(lane: k, L, 32)
            yb.storeHalf(fp16(s.lanes.scale[k]), at: 0)
            packQ5(UnsafeRawPointer(L).assumingMemoryBound(to: UInt8.self), yb + 2)
        }
    }

    static func quantizeQ5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>, _ s: QuantScratch) {
        affineBatches(x, n: n, qw: qw, nmax: 31, s) { k, ib in
            let yb = y + 24 * ib
            yb.storeHalf(fp16(s.scales[k]), at: 0)
            yb.storeHalf(fp16(-s.mins[k]), at: 2)
            packQ5(s.L + 32 * k, yb + 4)
        }
    }

    // MARK: dequantization

    static func dequantizeQ4_0(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 18 * i, yb = y + 32 * i
            let d = xb.halfFloat(at: 0)
            for j in 0..<16 {
                yb[j] = Float(Int(xb[2 + j] & 0x0F) - 8) * d
                yb[j + 16] = Float(Int(xb[2 + j] >> 4) - 8) * d
            }
        }
    }

    static func dequantizeQ4_1(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 20 * i, yb = y + 32 * i
            let d = xb.halfFloat(at: 0), m = xb.halfFloat(at: 2)
            for j in 0..<16 {
                yb[j] = Float(xb[4 + j] & 0x0F) * d + m
                yb[j + 16] = Float(xb[4 + j] >> 4) * d + m
            }
        }
    }

    static func dequantizeQ5(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int, hasMin: Bool) {
        let size = hasMin ? 24 : 22
        for i in 0..<blocks {
            let xb = x + size * i, yb = y + 32 * i
            let d = xb.halfFloat(at: 0)
            let m: Float = hasMin ? xb.halfFloat(at: 2) : 0
            let qhOffset = hasMin ? 4 : 2
            let qh = xb.u32(at: qhOffset)
            let qs = xb + qhOffset + 4
            for j in 0..<16 {
                let h0 = UInt8(truncatingIfNeeded: (qh >> j) << 4) & 0x10
                let h1 = UInt8(truncatingIfNeeded: qh >> (j + 12)) & 0x10
                let q0 = Int((qs[j] & 0x0F) | h0), q1 = Int((qs[j] >> 4) | h1)
                if hasMin {
                    yb[j] = Float(q0) * d + m
                    yb[j + 16] = Float(q1) * d + m
                } else {
                    yb[j] = Float(q0 - 16) * d
                    yb[j + 16] = Float(q1 - 16) * d
                }
            }
        }
    }

    static func dequantizeQ8_0(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 34 * i, yb = y + 32 * i
            let d = xb.halfFloat(at: 0)
            for j in 0..<32 { yb[j] = Float(Int8(bitPattern: xb[2 + j])) * d }
        }
    }

    static func dequantizeQ8_1(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 36 * i, yb = y + 32 * i
            let d = xb.halfFloat(at: 0)
            for j in 0..<32 { yb[j] = Float(Int8(bitPattern: xb[4 + j])) * d }
        }
    }
}

extension GGMLFormat {
    public static let q4_0 = GGMLFormat(.q4_0, activation: .q8_0, quantize: { x, y, n, qw, s in
        if let qw { LegacyQuants.quantizeQ4_0(x, y, n: n, qw: qw, s) } else { LegacyVectorQuants.quantizeQ4_0(x, y, blocks: n / 32) }
    }, dequantize: LegacyQuants.dequantizeQ4_0, codec: .symmetric(levels: 16) { l, b in
        for j in 0..<16 { b[2 + j] = UInt8(l[j]) | UInt8(l[j + 16]) << 4 }
    })

    public static let q4_1 = GGMLFormat(.q4_1, activation: .q8_1, quantize: { x, y, n, qw, s in
        if let qw { LegacyQuants.quantizeQ4_1(x, y, n: n, qw: qw, s) } else { LegacyVectorQuants.quantizeQ4_1(x, y, blocks: n / 32) }
    }, dequantize: LegacyQuants.dequantizeQ4_1, codec: .affine(levels: 16) { l, b in
        for j in 0..<16 { b[4 + j] = UInt8(l[j]) | UInt8(l[j + 16]) << 4 }
    })

    public static let q5_0 = GGMLFormat(.q5_0, activation: .q8_0, quantize: { x, y, n, qw, s in
        if let qw { LegacyQuants.quantizeQ5_0(x, y, n: n, qw: qw, s) } else { LegacyVectorQuants.quantizeQ5_0(x, y, blocks: n / 32, s) }
    }, dequantize: { LegacyQuants.dequantizeQ5($0, $1, blocks: $2, hasMin: false) },
       codec: .symmetric(levels: 32) { l, b in withByteLevels(l, 32) { LegacyQuants.packQ5($0, b + 2) } })

    public static let q5_1 = GGMLFormat(.q5_1, activation: .q8_1, quantize: { x, y, n, qw, s in
        if let qw { LegacyQuants.quantizeQ5_1(x, y, n: n, qw: qw, s) } else { LegacyVectorQuants.quantizeQ5_1(x, y, blocks: n / 32, s) }
    }, dequantize: { LegacyQuants.dequantizeQ5($0, $1, blocks: $2, hasMin: true) },
       codec: .affine(levels: 32) { l, b in withByteLevels(l, 32) { LegacyQuants.packQ5($0, b + 4) } })

    /// ggml ignores importance for Q8_0.
    public static let q8_0 = GGMLFormat(.q8_0, activation: .q8_0, usesImportance: false, quantize: { x, y, n, _, _ in
        LegacyVectorQuants.quantizeQ8_0(x, y, blocks: n / 32)
    }, dequantize: LegacyQuants.dequantizeQ8_0, codec: .q8_0)

    /// Activation format only (Quanta reads it; weights are never stored as Q8_1).
    public static let q8_1 = GGMLFormat(.q8_1, activation: nil, quantize: nil, dequantize: LegacyQuants.dequantizeQ8_1)
}
