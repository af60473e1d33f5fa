import QuantaCore

// Q4_K, Q5_K and Q6_K (superblocks of 256), ported from ggml.
// Q4_K (144 bytes): d:f16, dmin:f16, scales[12] (8 six-bit scales and mins), qs[128].
// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128].
// Q6_K (210 bytes): ql[128], qh[64], scales:i8[16], d:f16.

enum KQuantsHigh {
    /// Packs eight 6-bit scales and mins into the 12-byte Q4_K/Q5_K layout.
    @inline(__always)
    static func packScalesMins(_ ls: UnsafePointer<UInt8>, _ lm: UnsafePointer<UInt8>, _ out: UnsafeMutablePointer<UInt8>) {
        for j in 0..<8 {
            if j < 4 {
                out[j] = ls[j]
                out[j + 4] = lm[j]
            } else {
                out[j + 4] = (ls[j] & 0xF) | (lm[j] & 0xF) << 4
                out[j - 4] |= (ls[j] >> 4) << 6
                out[j] |= (lm[j] >> 4) << 6
            }
        }
    }

    /// ggml `get_scale_min_k4`.
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4, (q[j + 4] >> 4) | (q[j] >> 6) << 4)
    }

    /// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): block scales/mins from the per-32
    /// results, stored d/dmin, then the final quants `L`.
    @inline(__always)
    static func requantize(_ xb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, _ L: UnsafeMutablePointer<UInt8>, nmax: Int) {
        let d0 = fp32(UnsafePointer(yb).half(at: 0)), m0 = fp32(UnsafePointer(yb).half(at: 2))
        for j in 0..<8 {
            let (sc, m) = scaleMin(j, yb + 4)
            let d = d0 * Float(sc)
            if d == 0 { continue }
            let dm = m0 * Float(m)
            for ii in 0..<32 {
                var l = nearestInt((xb[32 * j + ii] + dm) / d)
                l = max(0, min(nmax, l))
                L[32 * j + ii] = UInt8(l)
            }
        }
    }

    /// The sub-block searches of `count` (1 or 2) consecutive superblocks at `xb`, side by side:
    /// lane 8·b + j is sub-block j of superblock b. `weights(b, j, out)` writes a sub-block's 32
    /// weights. Leaves scales, mins (8·count each) and levels (256·count) in `s`.
    @inline(__always)
    static func searchSubBlocks(_ xb: UnsafePointer<Float>, count: Int, nmax: Int, rmin: Float, rdelta: Float, nstep: Int,
                                _ s: QuantScratch, weights: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        s.searchQKX(xb, count: 8 * count, n: 32, nmax: nmax, rmin: rmin, rdelta: rdelta, nstep: nstep, useMAD: false) { k, out in
            weights(k / 8, k % 8, out)
        }
    }

    /// The reference path of Q4_K / Q5_K for `count` superblocks: weights av_x + |x|,
    /// `make_qkx2_quants`, then per superblock the 6-bit scales and the final levels.
    static func referenceScales(_ xb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, count: Int, bytes: Int, nmax: Int,
                                rmin: Float, rdelta: Float, nstep: Int, _ s: QuantScratch) {
        searchSubBlocks(xb, count: count, nmax: nmax, rmin: rmin, rdelta: rdelta, nstep: nstep, s) { b, j, weights in
            let x = xb + QK_K * b + 32 * j
            var sumX2: Float = 0
            for l in 0..<32 { sumX2 += x[l] * x[l] }
            let avX = (sumX2 / 32).squareRoot()
            for l in 0..<32 { weights[l] = avX + abs(x[l]) }
        }
        for b in 0..<count {
            let scales = s.scales + 8 * b, mins = s.mins + 8 * b, out = yb + bytes * b
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<8 {
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            let ls = s.Ls, lm = s.Lm
            for j in 0..<8 {
                ls[j] = min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
                lm[j] = min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
            }
            packScalesMins(ls, lm, out + 4)
            out.storeHalf(fp16(maxScale / 63), at: 0)
            out.storeHalf(fp16(maxMin / 63), at: 2)
            requantize(xb + QK_K * b, out, s.L + QK_K * b, nmax: nmax)
        }
    }

    /// The importance path of Q4_K / Q5_K for `count` superblocks: `make_qkx3_quants` then
    /// `make_qp_quants`.
    static func weightedScales(_ xb: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, count: Int, bytes: Int, nmax: Int,
                               qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let sigma2 = (superblockSigma2(xb), count > 1 ? superblockSigma2(xb + QK_K) : 0)
        let sw = s.sw
        searchSubBlocks(xb, count: count, nmax: nmax, rmin: -0.9, rdelta: 0.05, nstep: 36, s) { b, j, weights in
            let x = xb + QK_K * b + 32 * j, sigma = b == 0 ? sigma2.0 : sigma2.1
            if let qw {
                importanceWeights(x, qw + QK_K * b + 32 * j, sigma2: sigma, weights, 32)
            } else {
                let avX = sigma.squareRoot()
                for l in 0..<32 { weights[l] = avX + abs(x[l]) }
            }
            var sumw: Float = 0
            for l in 0..<32 { sumw += weights[l] }
            sw[8 * b + j] = sumw
        }
        for b in 0..<count {
            let out = yb + bytes * b
            let ls = s.Ls, lm = s.Lm
            let dBlock = makeQPQuants(8, 63, s.scales + 8 * b, ls, sw + 8 * b)
            let mBlock = makeQPQuants(8, 63, s.mins + 8 * b, lm, sw + 8 * b)
            for j in 0..<8 {
                ls[j] = min(63, ls[j])
                lm[j] = min(63, lm[j])
            }
            packScalesMins(ls, lm, out + 4)
            out.storeHalf(fp16(dBlock), at: 0)
            out.storeHalf(fp16(mBlock), at: 2)
            requantize(xb + QK_K * b, out, s.L + QK_K * b, nmax: nmax)
        }
    }

    static func packQ4(_ L: UnsafePointer<UInt8>, _ q: UnsafeMutablePointer<UInt8>) {
        for j in stride(from: 0, to: QK_K, by: 64) {
            for l in 0..<32 { q[j / 2 + l] = L[j + l] | L[j + l + 32] << 4 }
        }
    }

    static func packQ5(_ L: UnsafePointer<UInt8>, _ qh: UnsafeMutablePointer<UInt8>, _ ql: UnsafeMutablePointer<UInt8>) {
        for j in 0..<32 { qh[j] = 0 }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for n in stride(from: 0, to: QK_K, by: 64) {
            for j in 0..<32 {
                var l1 = L[n + j]
                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                var l2 = L[n + j + 32]
                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                ql[n / 2 + j] = l1 | l2 << 4
            }
            m1 <<= 2
            m2 <<= 2
        }
    }

    /// Q4_K and Q5_K share everything but the level count, the reference search grid and the packing.
    private static func quantizeScaleMinK(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, bytes: Int,
                                          nmax: Int, grid: (rmin: Float, rdelta: Float, nstep: Int), qw: UnsafePointer<Float>?,
                                          reference: Bool, _ s: QuantScratch,
                                          pack: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void) {
        for i in stride(from: 0, to: blocks, by: 2) {
            let count = min(2, blocks - i)
            let xb = x + QK_K * i, yb = y + bytes * i
            for b in 0..<count { for j in 0..<12 { yb[bytes * b + 4 + j] = 0 } }
            if reference {
                referenceScales(xb, yb, count: count, bytes: bytes, nmax: nmax, rmin: grid.rmin, rdelta: grid.rdelta,
                                nstep: grid.nstep, s)
            } else {
                weightedScales(xb, yb, count: count, bytes: bytes, nmax: nmax, qw: qw.map { $0 + QK_K * i }, s)
            }
            for b in 0..<count { pack(s.L + QK_K * b, yb + bytes * b) }
        }
    }

    static func quantizeQ4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, qw: UnsafePointer<Float>?,
                             reference: Bool, _ s: QuantScratch) {
        quantizeScaleMinK(x, y, blocks: blocks, bytes: 144, nmax: 15, grid: (-1, 0.1, 20), qw: qw, reference: reference, s) {
            packQ4($0, $1 + 16)
        }
    }

    static func quantizeQ5_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, qw: UnsafePointer<Float>?,
                             reference: Bool, _ s: QuantScratch) {
        quantizeScaleMinK(x, y, blocks: blocks, bytes: 176, nmax: 31, grid: (-0.5, 0.1, 15), qw: qw, reference: reference, s) {
            packQ5($0, $1 + 16, $1 + 48)
        }
    }

    static func dequantizeQ4_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        dequantizeScaleMinK(x, y, blocks: blocks, bytes: 144, highBits: false)
    }

    static func dequantizeQ5_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        dequantizeScaleMinK(x, y, blocks: blocks, bytes: 176, highBits: true)
    }

    /// Q4_K (nibbles at byte 16) and Q5_K (high bits at 16, nibbles at 48): d·sc·q - dmin·m per 32.
    private static func dequantizeScaleMinK(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int, bytes: Int,
                                            highBits: Bool) {
        var out = y
        for i in 0..<blocks {
            let xb = x + bytes * i
            let d = xb.halfFloat(at: 0), min = xb.halfFloat(at: 2)
            let qh = xb + 16
            var ql = xb + (highBits ? 48 : 16)
            var u1: UInt8 = 1, u2: UInt8 = 2
            for s in stride(from: 0, to: 8, by: 2) {
                let (sc1, m1) = scaleMin(s, xb + 4), (sc2, m2) = scaleMin(s + 1, xb + 4)
                let d1 = d * Float(sc1), mm1 = min * Float(m1), d2 = d * Float(sc2), mm2 = min * Float(m2)
                for l in 0..<32 { out[l] = d1 * Float(Int(ql[l] & 0xF) + (highBits && qh[l] & u1 != 0 ? 16 : 0)) - mm1 }
                for l in 0..<32 { out[32 + l] = d2 * Float(Int(ql[l] >> 4) + (highBits && qh[l] & u2 != 0 ? 16 : 0)) - mm2 }
                out += 64
                ql += 32
                u1 <<= 2
                u2 <<= 2
            }
        }
    }

    // MARK: Q6_K

    static func quantizeQ6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let L = s.Li, scales = s.scales
        for i in 0..<blocks {
            let xb = x + QK_K * i, yb = y + 210 * i
            var maxScale: Float = 0, maxAbsScale: Float = 0
            let lanes = s.lanes
            for ib in 0..<16 { lanes.load(lane: ib, xb + 16 * ib, qw.map { $0 + QK_K * i + 16 * ib }, 16) }
            lanes.makeQX(16, 32, weighted: qw != nil)
            for ib in 0..<16 {
                let scale = lanes.scale[ib]
                lanes.storeLevels(lane: ib, L + 16 * ib, 16)
                scales[ib] = scale
                if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
            }
            if maxAbsScale < groupMaxEps {
                for b in 0..<210 { yb[b] = 0 }
                continue
            }
            let iscale = -128 / maxScale
            yb.storeHalf(fp16(1 / iscale), at: 208)
            for ib in 0..<16 { yb[192 + ib] = UInt8(truncatingIfNeeded: min(127, nearestInt(iscale * scales[ib]))) }
            let d0 = fp32(UnsafePointer(yb).half(at: 208))
            for j in 0..<16 {
                let d = d0 * Float(Int8(bitPattern: yb[192 + j]))
                if d == 0 { continue }
                for ii in 0..<16 {
                    var l = nearestInt(xb[16 * j + ii] / d)
                    l = max(-32, min(31, l))
                    L[16 * j + ii] = Int8(l + 32)
                }
            }
            packQ6(UnsafeRawPointer(L).assumingMemoryBound(to: UInt8.self), yb)
        }
    }

    /// Q6_K level bytes: low nibbles in ql[128], high two bits in qh[64] (levels 0..<64).
    static func packQ6(_ L: UnsafePointer<UInt8>, _ yb: UnsafeMutablePointer<UInt8>) {
        var ql = yb, qh = yb + 128
        for j in stride(from: 0, to: QK_K, by: 128) {
            for l in 0..<32 {
                let q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF
                let q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF
                ql[l] = q1 | q3 << 4
                ql[l + 32] = q2 | q4 << 4
                qh[l] = L[j + l] >> 4 | (L[j + l + 32] >> 4) << 2 | (L[j + l + 64] >> 4) << 4 | (L[j + l + 96] >> 4) << 6
            }
            ql += 64
            qh += 32
        }
    }

    static func dequantizeQ6_K(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 210 * i
            let d = xb.halfFloat(at: 208)
            var ql = xb, qh = xb + 128, sc = xb + 192
            for _ in stride(from: 0, to: QK_K, by: 128) {
                for l in 0..<32 {
                    let s = l / 16
                    let q1 = Int((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32
                    let q2 = Int((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32
                    let q3 = Int((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32
                    let q4 = Int((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32
                    out[l] = d * Float(Int8(bitPattern: sc[s])) * Float(q1)
                    out[l + 32] = d * Float(Int8(bitPattern: sc[s + 2])) * Float(q2)
                    out[l + 64] = d * Float(Int8(bitPattern: sc[s + 4])) * Float(q3)
                    out[l + 96] = d * Float(Int8(bitPattern: sc[s + 6])) * Float(q4)
                }
                out += 128
                ql += 64
                qh += 32
                sc += 8
            }
        }
    }
}

extension GGMLFormat {
    public static let q4_K = GGMLFormat(.q4_K, activation: .q8_K, quantize: { x, y, n, qw, s in
        KQuantsHigh.quantizeQ4_K(x, y, blocks: n / QK_K, qw: qw, reference: qw == nil, s)
    }, dequantize: KQuantsHigh.dequantizeQ4_K, codec: .scaleMinK(levels: 16) { l, b in
        withByteLevels(l, QK_K) { KQuantsHigh.packQ4($0, b + 16) }
    })

    public static let q5_K = GGMLFormat(.q5_K, activation: .q8_K, quantize: { x, y, n, qw, s in
        KQuantsHigh.quantizeQ5_K(x, y, blocks: n / QK_K, qw: qw, reference: qw == nil, s)
    }, dequantize: KQuantsHigh.dequantizeQ5_K, codec: .scaleMinK(levels: 32) { l, b in
        withByteLevels(l, QK_K) { KQuantsHigh.packQ5($0, b + 16, b + 48) }
    })

    public static let q6_K = GGMLFormat(.q6_K, activation: .q8_K, quantize: { x, y, n, qw, s in
        KQuantsHigh.quantizeQ6_K(x, y, blocks: n / QK_K, qw: qw, s)
    }, dequantize: KQuantsHigh.dequantizeQ6_K, codec: .q6_K)
}
