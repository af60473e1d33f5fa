import QuantaCore

// Q2_K and Q3_K (superblocks of 256), ported from ggml.
// Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min), qs[64], d:f16, dmin:f16.
// Q3_K (110 bytes): hmask[32], qs[64], scales[12] (6-bit, packed), d:f16.

enum KQuantsLow {
    /// 2-bit values of 256 quants packed 4 per byte in 128-quant halves.
    @inline(__always)
    static func pack2(_ L: UnsafePointer<UInt8>, _ qs: UnsafeMutablePointer<UInt8>) {
        for j in stride(from: 0, to: QK_K, by: 128) {
            for l in 0..<32 {
                qs[j / 4 + l] = L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6
            }
        }
    }

    static func quantizeQ2_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, _ s: QuantScratch) {
        let L = s.L, mins = s.mins, scales = s.scales
        let q4scale: Float = 15
        for i in 0..<blocks {
            let xb = x + QK_K * i, yb = y + 84 * i
            var maxScale: Float = 0, maxMin: Float = 0
            s.searchQKX(xb, count: 16, n: 16, nmax: 3, rmin: -0.5, rdelta: 0.1, nstep: 15, useMAD: true) { j, weights in
                for l in 0..<16 { weights[l] = abs(xb[16 * j + l]) }
            }
            for j in 0..<16 {
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            if maxScale > 0 {
                let iscale = q4scale / maxScale
                for j in 0..<16 { yb[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j])) }
                yb.storeHalf(fp16(maxScale / q4scale), at: 80)
            } else {
                for j in 0..<16 { yb[j] = 0 }
                yb.storeHalf(fp16(0), at: 80)
            }
            if maxMin > 0 {
                let iscale = q4scale / maxMin
                for j in 0..<16 { yb[j] |= UInt8(truncatingIfNeeded: nearestInt(iscale * mins[j]) << 4) }
                yb.storeHalf(fp16(maxMin / q4scale), at: 82)
            } else {
                yb.storeHalf(fp16(0), at: 82)
            }
            requantize2(xb, yb, L, dm: fp32(UnsafePointer(yb).half(at: 80)), mm: fp32(UnsafePointer(yb).half(at: 82)))
            pack2(L, yb + 16)
        }
    }

    /// Recomputes the 2-bit quants from the stored (rounded) scales and mins.
    @inline(__always)
    static func requantize2(_ xb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, _ L: UnsafeMutablePointer<UInt8>, dm: Float, mm: Float) {
        for j in 0..<16 {
            let d = dm * Float(yb[j] & 0xF)
            if d == 0 { continue }
            let m = mm * Float(yb[j] >> 4)
            for ii in 0..<16 {
                var l = nearestInt((xb[16 * j + ii] + m) / d)
                l = max(0, min(3, l))
                L[16 * j + ii] = UInt8(l)
            }
        }
    }

    static func quantizeQ2_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>, _ s: QuantScratch) {
        let L = s.L, mins = s.mins, scales = s.scales, sw = s.sw, Ls = s.Ls, Lm = s.Lm
        for i in 0..<(n / QK_K) {
            let xb = x + QK_K * i, yb = y + 84 * i
            var sumx2: Float = 0
            for j in 0..<QK_K { sumx2 += xb[j] * xb[j] }
            let sigma2 = sumx2 / Float(QK_K)
            s.searchQKX(xb, count: 16, n: 16, nmax: 3, rmin: -0.9, rdelta: 0.05, nstep: 36, useMAD: false) { j, weight in
                importanceWeights(xb + 16 * j, qw + QK_K * i + 16 * j, sigma2: sigma2, weight, 16)
                var sum: Float = 0
                for l in 0..<16 { sum += weight[l] }
                sw[j] = sum
            }
            let dm = makeQPQuants(16, 15, scales, Ls, sw)
            let mm = makeQPQuants(16, 15, mins, Lm, sw)
            yb.storeHalf(fp16(dm), at: 80)
            yb.storeHalf(fp16(mm), at: 82)
            for j in 0..<16 { yb[j] = Ls[j] | Lm[j] << 4 }
            requantize2(xb, yb, L, dm: fp32(fp16(dm)), mm: fp32(fp16(mm)))
            pack2(L, yb + 16)
        }
    }

    static func dequantizeQ2_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 84 * i
            let d = xb.halfFloat(at: 80), min = xb.halfFloat(at: 82)
            var q = xb + 16
            var scaleIndex = 0
            for _ in stride(from: 0, to: QK_K, by: 128) {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half in 0..<2 {
                        let sc = xb[scaleIndex]
                        scaleIndex += 1
                        let dl = d * Float(sc & 0xF), ml = min * Float(sc >> 4)
                        for l in 0..<16 { out[l] = dl * Float((q[l + 16 * half] >> shift) & 3) - ml }
                        out += 16
                    }
                    shift += 2
                }
                q += 32
            }
        }
    }

    // MARK: Q3_K

    /// Packs sixteen 6-bit scales (0...63) into the 12-byte Q3_K layout.
    @inline(__always)
    static func packScales3(_ scale: (Int) -> Int, _ out: UnsafeMutablePointer<UInt8>) {
        for j in 0..<12 { out[j] = 0 }
        for j in 0..<16 {
            var l = scale(j)
            if j < 8 { out[j] = UInt8(l & 0xF) } else { out[j - 8] |= UInt8((l & 0xF) << 4) }
            l >>= 4
            out[j % 4 + 8] |= UInt8(truncatingIfNeeded: l << (2 * (j / 4)))
        }
    }

    /// The signed 6-bit scale j of a Q3_K block.
    @inline(__always)
    static func scale3(_ scales: UnsafePointer<UInt8>, _ j: Int) -> Int {
        let low = j < 8 ? Int(scales[j] & 0xF) : Int(scales[j - 8] >> 4)
        return (low | ((Int(scales[8 + j % 4]) >> (2 * (j / 4))) & 3) << 4) - 32
    }

    /// Recomputes the 3-bit quants from the stored scales, then writes hmask and qs.
    @inline(__always)
    static func finishQ3(_ xb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, _ L: UnsafeMutablePointer<Int8>) {
        let dAll = fp32(UnsafePointer(yb).half(at: 108))
        for j in 0..<16 {
            let d = dAll * Float(scale3(yb + 96, j))
            if d == 0 { continue }
            for ii in 0..<16 {
                var l = nearestInt(xb[16 * j + ii] / d)
                l = max(-4, min(3, l))
                L[16 * j + ii] = Int8(l + 4)
            }
        }
        packQ3(UnsafeMutableRawPointer(L).assumingMemoryBound(to: UInt8.self), yb)
    }

    /// Q3_K level bytes from levels 0..<8 (changed in place to their low two bits): the high
    /// bit in hmask[32], the low bits in qs[64].
    static func packQ3(_ L: UnsafeMutablePointer<UInt8>, _ yb: UnsafeMutablePointer<UInt8>) {
        for j in 0..<32 { yb[j] = 0 }
        var m = 0
        var hm: UInt8 = 1
        for j in 0..<QK_K {
            if L[j] > 3 {
                yb[m] |= hm
                L[j] -= 4
            }
            m += 1
            if m == QK_K / 8 { m = 0; hm <<= 1 }
        }
        pack2(L, yb + 32)
    }

    static func quantizeQ3_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, _ s: QuantScratch) {
        let L = s.Li, scales = s.scales
        for i in 0..<blocks {
            let xb = x + QK_K * i, yb = y + 110 * i
            var maxScale: Float = 0, amax: Float = 0
            let lanes = s.lanes
            for j in 0..<16 { lanes.load(lane: j, xb + 16 * j, nil, 16) }
            lanes.makeQ3(16, 4)
            for j in 0..<16 {
                scales[j] = lanes.scale[j]
                lanes.storeLevels(lane: j, L + 16 * j, 16)
                let scale = abs(scales[j])
                if scale > amax { amax = scale; maxScale = scales[j] }
            }
            if maxScale != 0 {
                let iscale = -32 / maxScale
                packScales3({ j in
                    let l = Int(Int8(truncatingIfNeeded: nearestInt(iscale * scales[j])))
                    return max(-32, min(31, l)) + 32
                }, yb + 96)
                yb.storeHalf(fp16(1 / iscale), at: 108)
            } else {
                for j in 0..<12 { yb[96 + j] = 0 }
                yb.storeHalf(fp16(0), at: 108)
            }
            finishQ3(xb, yb, L)
        }
    }

    static func quantizeQ3_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let L = s.Li, scales = s.scales, weight = s.weights, sw = s.sw, Ls = s.Lsi
        for i in 0..<(n / QK_K) {
            let xb = x + QK_K * i, yb = y + 110 * i
            var sumx2: Float = 0
            for j in 0..<QK_K { sumx2 += xb[j] * xb[j] }
            let sigma2 = 2 * sumx2 / Float(QK_K)
            let lanes = s.lanes
            for j in 0..<16 {
                if let qw {
                    let q = qw + QK_K * i + 16 * j
                    importanceWeights(xb + 16 * j, q, sigma2: sigma2, weight, 16)
                } else {
                    for l in 0..<16 { weight[l] = xb[16 * j + l] * xb[16 * j + l] }
                }
                var sumw: Float = 0
                for l in 0..<16 { sumw += weight[l] }
                sw[j] = sumw
                lanes.load(lane: j, xb + 16 * j, weight, 16)
            }
            lanes.makeQX(16, 4, weighted: true)
            for j in 0..<16 {
                scales[j] = lanes.scale[j]
                lanes.storeLevels(lane: j, L + 16 * j, 16)
            }
            let dBlock = makeQXQuants(16, 32, scales, Ls, 1, sw)
            packScales3({ Int(Ls[$0]) }, yb + 96)
            yb.storeHalf(fp16(dBlock), at: 108)
            finishQ3(xb, yb, L)
        }
    }

    static func dequantizeQ3_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 110 * i
            let dAll = xb.halfFloat(at: 108)
            let hm = xb
            var q = xb + 32
            var m: UInt8 = 1
            var scaleIndex = 0
            for _ in stride(from: 0, to: QK_K, by: 128) {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    for half in 0..<2 {
                        let dl = dAll * Float(scale3(xb + 96, scaleIndex))
                        scaleIndex += 1
                        for l in 0..<16 {
                            let low = Int((q[l + 16 * half] >> shift) & 3)
                            out[l] = dl * Float(low - ((hm[l + 16 * half] & m) != 0 ? 0 : 4))
                        }
                        out += 16
                    }
                    shift += 2
                    m <<= 1
                }
                q += 32
            }
        }
    }
}

extension GGMLFormat {
    public static let q2_K = GGMLFormat(.q2_K, activation: .q8_K, quantize: { x, y, n, qw, s in
        if let qw { KQuantsLow.quantizeQ2_K(x, y, n: n, qw: qw, s) } else { KQuantsLow.quantizeQ2_K(x, y, blocks: n / QK_K, s) }
    }, dequantize: KQuantsLow.dequantizeQ2_K, codec: BlockCodec(
        level: { x, j, b in
            let sc = b[j / 16], d = b.halfFloat(at: 80) * Float(sc & 0xF), m = b.halfFloat(at: 82) * Float(sc >> 4)
            return nearestLevel(x + m, d, 0, 3, zero: 0)
        },
        value: { q, j, b in
            let sc = b[j / 16]
            return b.halfFloat(at: 80) * Float(sc & 0xF) * Float(q) - b.halfFloat(at: 82) * Float(sc >> 4)
        },
        pack: { l, b in withByteLevels(l, QK_K) { KQuantsLow.pack2($0, b + 16) } }))

    public static let q3_K = GGMLFormat(.q3_K, activation: .q8_K, quantize: { x, y, n, qw, s in
        if let qw { KQuantsLow.quantizeQ3_K(x, y, n: n, qw: qw, s) } else { KQuantsLow.quantizeQ3_K(x, y, blocks: n / QK_K, s) }
    }, dequantize: KQuantsLow.dequantizeQ3_K, codec: BlockCodec(
        level: { x, j, b in nearestLevel(x, b.halfFloat(at: 108) * Float(KQuantsLow.scale3(b + 96, j / 16)), -4, 3, zero: 0) + 4 },
        value: { q, j, b in b.halfFloat(at: 108) * Float(KQuantsLow.scale3(b + 96, j / 16)) * Float(Int(q) - 4) },
        pack: { l, b in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: QK_K) { bytes in
                for j in 0..<QK_K { bytes[j] = UInt8(truncatingIfNeeded: l[j]) }
                KQuantsLow.packQ3(bytes.baseAddress!, b)
            }
        }))
}
