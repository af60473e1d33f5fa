import QuantaCore

/// ggml's 1.5- and 1.75-bit formats: groups of 8 weights are points of the 2048-point ternary grid
/// (`IQ1Grid`), each value `(v + delta) * scale` with v in {-1, 0, 1} and delta ±0.125 per group.
/// IQ1_S (50 bytes / 256): d:f16, qs[32] (index low bytes), qh:u16[8] per 32 (three 3-bit index
/// highs, 3-bit scale in bits 12-14, delta sign in bit 15). IQ1_M (56 bytes / 256): qs[32],
/// qh[16] per 16 (index highs in bits 0-2 and 4-6, delta signs in bits 3 and 7), scales:u16[4]
/// (3-bit scale per 16, the f16 superblock scale spread over the top nibbles).
/// Ported from `quantize_row_iq1_s_impl` and `quantize_row_iq1_m_impl`.
enum IQ1Quants {
    /// The three values of a group with delta +0.125 (`x_p`) and -0.125 (`x_m`).
    static let plus: [Float] = [-1 + 0.125, 0.125, 1 + 0.125]
    static let minus: [Float] = [-1 - 0.125, -0.125, 1 - 0.125]

    /// Sorts the `count` values of `x` into `pairs` (value, index bits) as ggml does, ascending.
    @inline(__always)
    static func sortedPairs(_ x: UnsafePointer<Float>, _ count: Int, _ pairs: UnsafeMutablePointer<Float>) {
        for j in 0..<count {
            pairs[2 * j] = x[j]
            pairs[2 * j + 1] = Float(bitPattern: UInt32(j))
        }
        IQ1Grid.sortPairs(pairs, count: count)
    }

    @inline(__always) static func sortedIndex(_ pairs: UnsafePointer<Float>, _ j: Int) -> Int { Int(pairs[2 * j + 1].bitPattern) }

    /// Per-row working memory beyond `QuantScratch`: sort pairs, prefix sums, the 3 values of each
    /// delta and a group's grid indices.
    struct Work {
        let pairs: UnsafeMutablePointer<Float>, sumx: UnsafeMutablePointer<Float>, sumw: UnsafeMutablePointer<Float>
        let xp: UnsafeMutablePointer<Float>, xm: UnsafeMutablePointer<Float>
        let index: UnsafeMutablePointer<Int>
        /// IQ1_M: per sorted position j and level, the 8 terms its 4 delta pairs add, at 8 * (3j + level).
        let terms: UnsafeMutablePointer<Float>

        static func with(_ body: (Work) -> Void) {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * 32 + 2 + 6 + 16 * 3 * 8) { floats in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: 4) { ints in
                    let pairs = floats.baseAddress!, sumx = pairs + 64, sumw = sumx + 33, xp = sumw + 33, xm = xp + 3
                    for j in 0..<3 {
                        xp[j] = plus[j]
                        xm[j] = minus[j]
                    }
                    body(Work(pairs: pairs, sumx: sumx, sumw: sumw, xp: xp, xm: xm, index: ints.baseAddress!, terms: xm + 3))
                }
            }
        }
    }

    /// IQ1_S for one row of `n` values (whole superblocks); `qw` (one weight per value) is required.
    /// Per 32 values: the exact best split of the sorted values into -1/0/+1 for both deltas, then
    /// off-grid groups moved to their best grid neighbour and the scale refitted. A superblock whose
    /// every group is (near) zero keeps d = 0.
    static func quantizeIQ1_S(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>, _ s: QuantScratch) {
        Work.with { work in
            for ibl in 0..<(n / QK_K) {
                quantizeSuperblockS(x + QK_K * ibl, y + 50 * ibl, qw + QK_K * ibl, IQ1Grid.shared, s, work)
            }
        }
    }

    private static func quantizeSuperblockS(_ xbl: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ qwbl: UnsafePointer<Float>,
                                            _ grid: IQ1Grid, _ s: QuantScratch, _ work: Work) {
        let blockSize = 32
        let scales = s.scales, weight = s.weights, L = s.Li, shifts = s.Lsi
        let pairs = work.pairs, sumx = work.sumx, sumw = work.sumw, xp = work.xp, xm = work.xm, index = work.index
        for j in 0..<50 { y[j] = 0 }
        var maxScale: Float = 0
        let sigma2 = superblockSigma2(xbl)
        for ib in 0..<(QK_K / blockSize) {
            let xb = xbl + blockSize * ib
            importanceWeights(xb, qwbl + blockSize * ib, sigma2: sigma2, weight, blockSize)
            let max = maxAbs(xb, blockSize)
            if max < 1e-12 {
                scales[ib] = 0
                shifts[ib] = 1
                continue
            }
            sortedPairs(xb, blockSize, pairs)
            sumx[0] = 0
            sumw[0] = 0
            for j in 0..<blockSize {
                let i = sortedIndex(pairs, j)
                sumx[j + 1] = sumx[j] + weight[i] * xb[i]
                sumw[j + 1] = sumw[j] + weight[i]
            }
            var bestScore = -Float.greatestFiniteMagnitude, scale = max
            var besti1 = -1, besti2 = -1, bestShift = 0
            for i1 in 0...blockSize {
                for i2 in i1...blockSize {
                    let x0 = sumx[i1] - sumx[0], x1 = sumx[i2] - sumx[i1], x2 = sumx[blockSize] - sumx[i2]
                    let w0 = sumw[i1] - sumw[0], w1 = sumw[i2] - sumw[i1], w2 = sumw[blockSize] - sumw[i2]
                    var sumqx = x0 * xp[0] + x1 * xp[1] + x2 * xp[2]
                    var sumq2 = w0 * xp[0] * xp[0] + w1 * xp[1] * xp[1] + w2 * xp[2] * xp[2]
                    if sumq2 > 0 && sumqx * sumqx > bestScore * sumq2 {
                        scale = sumqx / sumq2
                        bestScore = scale * sumqx
                        besti1 = i1; besti2 = i2; bestShift = 1
                    }
                    sumqx = x0 * xm[0] + x1 * xm[1] + x2 * xm[2]
                    sumq2 = w0 * xm[0] * xm[0] + w1 * xm[1] * xm[1] + w2 * xm[2] * xm[2]
                    if sumq2 > 0 && sumqx * sumqx > bestScore * sumq2 {
                        scale = sumqx / sumq2
                        bestScore = scale * sumqx
                        besti1 = i1; besti2 = i2; bestShift = -1
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || bestShift == 0 {
                scales[ib] = 0
                shifts[ib] = 1
                continue
            }
            for j in 0..<blockSize { L[sortedIndex(pairs, j)] = j < besti1 ? 0 : j < besti2 ? 1 : 2 }
            if scale < 0 {
                for j in 0..<blockSize { L[j] = 2 - L[j] }
                scale = -scale
                bestShift = -bestShift
            }
            let xx = bestShift == 1 ? xp : xm
            var allOnGrid = true
            for k in 0..<(blockSize / 8) {
                var key = 0
                for j in 0..<8 { key |= Int(L[8 * k + j]) << (2 * j) }
                var g = Int(grid.map[key])
                if g < 0 {
                    allOnGrid = false
                    g = grid.bestNeighbour(key: key, xb + 8 * k, weight + 8 * k, scale: scale, xx, L + 8 * k)
                }
                index[k] = g
            }
            if !allOnGrid {
                var sumqx: Float = 0, sumq2: Float = 0
                for k in 0..<(blockSize / 8) {
                    let pg = grid.levels + 8 * index[k]
                    for j in 0..<8 {
                        let w = weight[8 * k + j], q = xx[Int(pg[j])]
                        sumqx += w * q * xb[8 * k + j]
                        sumq2 += w * q * q
                    }
                }
                if sumqx > 0 && sumq2 > 0 { scale = sumqx / sumq2 }
            }
            var h = 0
            for k in 0..<(blockSize / 8) {
                y[2 + 4 * ib + k] = UInt8(truncatingIfNeeded: index[k])
                h |= (index[k] >> 8) << (3 * k)
            }
            y[34 + 2 * ib] = UInt8(truncatingIfNeeded: h)
            y[35 + 2 * ib] = UInt8(truncatingIfNeeded: h >> 8)
            scales[ib] = scale
            shifts[ib] = Int8(bestShift)
            maxScale = Swift.max(maxScale, scale)
        }
        if maxScale == 0 { return }
        let d = maxScale / 15
        y.storeHalf(fp16(d * 1.125), at: 0)
        let id = 1 / d
        for ib in 0..<(QK_K / blockSize) {
            var l = Swift.max(0, Swift.min(7, nearestInt(0.5 * (id * scales[ib] - 1))))
            if shifts[ib] == -1 { l |= 8 }
            y[35 + 2 * ib] |= UInt8(l << 4)
        }
    }
    /// IQ1_M for one row of `n` values (whole superblocks), with or without importance `qw`.
    /// Per 16 values: the exact best split into -1/0/+1 for the 4 delta pairs of its two groups of
    /// 8, grid neighbours as in IQ1_S; then the superblock scale is refitted to the 3-bit scales.
    static func quantizeIQ1_M(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        Work.with { work in
            for ibl in 0..<(n / QK_K) {
                quantizeSuperblockM(x + QK_K * ibl, y + 56 * ibl, qw.map { $0 + QK_K * ibl }, IQ1Grid.shared, s, work)
            }
        }
    }

    /// The delta values of group `k` (0, 1) of a 16-value block with delta pair `shift`: 0 (+, +),
    /// 1 (+, -), 2 (-, +), 3 (-, -).
    @inline(__always)
    static func deltaValues(_ shift: Int, _ k: Int, _ work: Work) -> UnsafeMutablePointer<Float> {
        (k == 0 ? shift < 2 : shift % 2 == 0) ? work.xp : work.xm
    }

    private static func quantizeSuperblockM(_ xbl: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ qwbl: UnsafePointer<Float>?,
                                            _ grid: IQ1Grid, _ s: QuantScratch, _ work: Work) {
        let blockSize = 16
        let scales = s.scales, weight = s.weights, L = s.Li, shifts = s.Lsi
        let pairs = work.pairs, xp = work.xp, xm = work.xm, index = work.index
        let qs = y, qh = y + 32, sc = y + 48
        for j in 0..<56 { y[j] = 0 }
        var maxScale: Float = 0
        let sigma2 = superblockSigma2(xbl)
        @inline(__always) func weights(_ ib: Int) {
            let xb = xbl + blockSize * ib
            if let qwbl {
                importanceWeights(xb, qwbl + blockSize * ib, sigma2: sigma2, weight, blockSize)
            } else {
                for i in 0..<blockSize { weight[i] = xb[i] * xb[i] }
            }
        }
        for ib in 0..<(QK_K / blockSize) {
            let xb = xbl + blockSize * ib
            weights(ib)
            let max = maxAbs(xb, blockSize)
            if max < 1e-7 {
                scales[ib] = 0
                shifts[ib] = 0
                continue
            }
            sortedPairs(xb, blockSize, pairs)
            var bestScore = -Float.greatestFiniteMagnitude, scale = max
            var besti1 = -1, besti2 = -1, bestK = -1
            // ggml adds, per sorted position in order, w·v·x and w·v² for the value v of each delta
            // pair (0: +,+ 1: +,- 2: -,+ 3: -,-; the first 8 values take the first delta); the
            // products depend only on position and level, so they are formed once here.
            let terms = work.terms
            for j in 0..<blockSize {
                let i = sortedIndex(pairs, j), w = weight[i], first = i < blockSize / 2
                for level in 0..<3 {
                    let p = xp[level], m = xm[level]
                    let px = w * p * xb[i], mx = w * m * xb[i], pp = w * p * p, mm = w * m * m
                    let t = terms + 8 * (3 * j + level)
                    t[0] = px; t[1] = first ? px : mx; t[2] = first ? mx : px; t[3] = mx
                    t[4] = pp; t[5] = first ? pp : mm; t[6] = first ? mm : pp; t[7] = mm
                }
            }
            // Four splits (i1, i2...i2+3) at a time, each summed in ggml's order; lanes are the 8 terms.
            let rows = UnsafeRawPointer(terms)
            @inline(__always) func row(_ j: Int, _ i1: Int, _ i2: Int) -> SIMD8<Float> {
                rows.loadUnaligned(fromByteOffset: 32 * (3 * j + (j < i1 ? 0 : j < i2 ? 1 : 2)), as: SIMD8<Float>.self)
            }
            for i1 in 0...blockSize {
                for i2 in stride(from: i1, through: blockSize, by: 4) {
                    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
                    for j in 0..<blockSize {
                        s0 += row(j, i1, i2)
                        s1 += row(j, i1, i2 + 1)
                        s2 += row(j, i1, i2 + 2)
                        s3 += row(j, i1, i2 + 3)
                    }
                    for lane in 0..<min(4, blockSize + 1 - i2) {
                        let sums = lane == 0 ? s0 : lane == 1 ? s1 : lane == 2 ? s2 : s3
                        for k in 0..<4 where sums[k + 4] > 0 && sums[k] * sums[k] > bestScore * sums[k + 4] {
                            scale = sums[k] / sums[k + 4]
                            bestScore = scale * sums[k]
                            besti1 = i1; besti2 = i2 + lane; bestK = k
                        }
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || bestK < 0 {
                scales[ib] = 0
                shifts[ib] = 0
                continue
            }
            for j in 0..<blockSize { L[sortedIndex(pairs, j)] = j < besti1 ? 0 : j < besti2 ? 1 : 2 }
            if scale < 0 {
                for j in 0..<blockSize { L[j] = 2 - L[j] }
                scale = -scale
                bestK = 3 - bestK
            }
            var allOnGrid = true
            for k in 0..<(blockSize / 8) {
                var key = 0
                for j in 0..<8 { key |= Int(L[8 * k + j]) << (2 * j) }
                var g = Int(grid.map[key])
                if g < 0 {
                    allOnGrid = false
                    g = grid.bestNeighbour(key: key, xb + 8 * k, weight + 8 * k, scale: scale, deltaValues(bestK, k, work), L + 8 * k)
                }
                index[k] = g
            }
            if !allOnGrid {
                var sumqx: Float = 0, sumq2: Float = 0
                for k in 0..<(blockSize / 8) {
                    let xx = deltaValues(bestK, k, work), pg = grid.levels + 8 * index[k]
                    for j in 0..<8 {
                        let w = weight[8 * k + j], q = xx[Int(pg[j])]
                        sumqx += w * q * xb[8 * k + j]
                        sumq2 += w * q * q
                    }
                }
                if sumqx > 0 && sumq2 > 0 { scale = sumqx / sumq2 }
            }
            qs[2 * ib] = UInt8(truncatingIfNeeded: index[0])
            qs[2 * ib + 1] = UInt8(truncatingIfNeeded: index[1])
            qh[ib] = UInt8((index[0] >> 8) | ((index[1] >> 8) << 4))
            scales[ib] = scale
            shifts[ib] = Int8(bestK)
            maxScale = Swift.max(maxScale, scale)
        }
        if maxScale == 0 { return }
        let masks: (UInt8, UInt8, UInt8, UInt8) = (0x00, 0x80, 0x08, 0x88)
        var d = maxScale / 15
        let id = 1 / d
        var sumqx: Float = 0, sumq2: Float = 0
        for ib in 0..<(QK_K / blockSize) {
            let l = Swift.max(0, Swift.min(7, nearestInt(0.5 * (id * scales[ib] - 1))))
            orHalf(sc + 2 * (ib / 4), l << (3 * (ib % 4)))
            let shift = Int(shifts[ib])
            qh[ib] |= shift == 0 ? masks.0 : shift == 1 ? masks.1 : shift == 2 ? masks.2 : masks.3
            weights(ib)
            let xb = xbl + blockSize * ib
            for k in 0..<(blockSize / 8) {
                let xx = deltaValues(shift, k, work)
                let pg = grid.levels + 8 * (Int(qs[2 * ib + k]) + ((Int(qh[ib]) << (8 - 4 * k)) & 0x700))
                for j in 0..<8 {
                    let w = weight[8 * k + j], q = xx[Int(pg[j])] * Float(2 * l + 1)
                    sumqx += w * q * xb[8 * k + j]
                    sumq2 += w * q * q
                }
            }
        }
        if sumq2 > 0 { d = sumqx / sumq2 }
        let h = Int(fp16(d * 1.1125))
        orHalf(sc, (h & 0x000F) << 12)
        orHalf(sc + 2, (h & 0x00F0) << 8)
        orHalf(sc + 4, (h & 0x0F00) << 4)
        orHalf(sc + 6, h & 0xF000)
    }

    /// `*(uint16_t *)p |= bits` (little-endian).
    @inline(__always) static func orHalf(_ p: UnsafeMutablePointer<UInt8>, _ bits: Int) {
        p[0] |= UInt8(truncatingIfNeeded: bits)
        p[1] |= UInt8(truncatingIfNeeded: bits >> 8)
    }
}

extension GGMLFormat {
    public static let iq1_S = GGMLFormat(.iq1_S, activation: .q8_K, requiresImportance: true, quantize: { x, y, n, qw, s in
        guard let qw else { preconditionFailure("IQ1_S requires an importance matrix") }
        IQ1Quants.quantizeIQ1_S(x, y, n: n, qw: qw, s)
    }, dequantize: IQDequant.iq1s)
    public static let iq1_M = GGMLFormat(.iq1_M, activation: .q8_K, quantize: { x, y, n, qw, s in
        IQ1Quants.quantizeIQ1_M(x, y, n: n, qw: qw, s)
    }, dequantize: IQDequant.iq1m)
}
