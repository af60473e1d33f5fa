import QuantaCore

// Scalar building blocks shared by the block formats, ported operation for operation from
// ggml `ggml-quants.c` so that results are bit-identical (same order of float operations,
// no fused multiply-adds; Swift never contracts a*b+c).

/// Superblock size of the k-quants and IQ types.
let QK_K = 256
/// Below this maximum a group is treated as all zero.
let groupMaxEps: Float = 1e-15

/// Round to nearest, ties to even, valid for |f| <= 4194303 (ggml `nearest_int`).
@inline(__always)
func nearestInt(_ f: Float) -> Int {
    let value = f + 12582912.0
    return Int(value.bitPattern & 0x007F_FFFF) - 0x0040_0000
}

/// C's `(int)f` as x86-64 computes it (`cvttss2si`): truncation toward zero, and Int32.min for
/// NaN and values beyond the 32-bit range. ggml's byte casts `(int8_t)f` keep its low byte.
@inline(__always)
func cInt(_ f: Float) -> Int {
    f.isNaN || abs(f) >= 2147483648 ? Int(Int32.min) : Int(f)
}

/// The first value of largest magnitude among `x[0..<n]` and that magnitude (0, 0 when all are 0),
/// as ggml's `if (ax > amax) { amax = ax; max = x[i]; }` loops find it.
@inline(__always)
func maxByMagnitude(_ x: UnsafePointer<Float>, _ n: Int) -> (value: Float, magnitude: Float) {
    var max: Float = 0, amax: Float = 0
    for i in 0..<n where abs(x[i]) > amax {
        amax = abs(x[i])
        max = x[i]
    }
    return (max, amax)
}

/// ggml's importance weights: `w[j] = qw[j] * sqrt(sigma2 + x[j]²)` for `n` values.
@inline(__always)
func importanceWeights(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, sigma2: Float, _ w: UnsafeMutablePointer<Float>, _ n: Int) {
    for j in 0..<n { w[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
}

/// Float to f16 and back: the precision ggml stores scales in.
@inline(__always) func fp16(_ f: Float) -> UInt16 { HalfConversion.floatToF16(f) }
@inline(__always) func fp32(_ h: UInt16) -> Float { HalfConversion.f16ToFloat(h) }

extension UnsafeMutablePointer where Pointee == UInt8 {
    /// Stores a little-endian f16 at byte `offset`.
    @inline(__always) func storeHalf(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(value & 0xFF)
        self[offset + 1] = UInt8(value >> 8)
    }
}

extension UnsafePointer where Pointee == UInt8 {
    /// The little-endian u16 at byte `offset`.
    @inline(__always) func half(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }
    @inline(__always) func halfFloat(at offset: Int) -> Float { fp32(half(at: offset)) }
    @inline(__always) func u32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16 | UInt32(self[offset + 3]) << 24
    }
}

/// ggml `make_qx_quants`: symmetric quantization of `n` values to [-nmax, nmax-1] with an
/// optional weighted scale search. Writes `L[i] = l + nmax`; returns the scale.
func makeQXQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
                  _ rmseType: Int, _ qw: UnsafePointer<Float>?) -> Float {
    let (max, amax) = maxByMagnitude(x, n)
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    var iscale = Float(-nmax) / max
    if rmseType == 0 {
        for i in 0..<n {
            let l = nearestInt(iscale * x[i])
            L[i] = Int8(nmax + Swift.max(-nmax, Swift.min(nmax - 1, l)))
        }
        return 1 / iscale
    }
    var rmse = rmseType
    var returnEarly = false
    if rmse < 0 { rmse = -rmse; returnEarly = true }
    @inline(__always) func weight(_ i: Int) -> Float {
        if let qw { return qw[i] }
        switch rmse {
        case 1: return x[i] * x[i]
        case 2: return 1
        case 3: return abs(x[i])
        default: return abs(x[i]).squareRoot()
        }
    }
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        var l = nearestInt(iscale * x[i])
        l = Swift.max(-nmax, Swift.min(nmax - 1, l))
        L[i] = Int8(l + nmax)
        let w = weight(i)
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
    }
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    if returnEarly { return suml2 > 0 ? 0.5 * (scale + 1 / iscale) : 1 / iscale }
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
        iscale = -(Float(nmax) + 0.1 * Float(step)) / max
        sumlx = 0
        suml2 = 0
        for i in 0..<n {
            var l = nearestInt(iscale * x[i])
            l = Swift.max(-nmax, Swift.min(nmax - 1, l))
            let w = weight(i)
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        if suml2 > 0 && sumlx * sumlx > best * suml2 {
            for i in 0..<n {
                let l = nearestInt(iscale * x[i])
                L[i] = Int8(nmax + Swift.max(-nmax, Swift.min(nmax - 1, l)))
            }
            scale = sumlx / suml2
            best = scale * sumlx
        }
    }
    return scale
}

/// ggml `make_q3_quants`: like `makeQXQuants` with an iterative refinement weighted by x².
func makeQ3Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>, _ doRMSE: Bool) -> Float {
    let (max, amax) = maxByMagnitude(x, n)
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let iscale = Float(-nmax) / max
    if doRMSE {
        var sumlx: Float = 0
        var suml2: Float = 0
        for i in 0..<n {
            var l = nearestInt(iscale * x[i])
            l = Swift.max(-nmax, Swift.min(nmax - 1, l))
            L[i] = Int8(l)
            let w = x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = x[i] * x[i]
                var slx = sumlx - w * x[i] * Float(L[i])
                if slx > 0 {
                    var sl2 = suml2 - w * Float(L[i]) * Float(L[i])
                    var newL = nearestInt(x[i] * sl2 / slx)
                    newL = Swift.max(-nmax, Swift.min(nmax - 1, newL))
                    if newL != Int(L[i]) {
                        slx += w * x[i] * Float(newL)
                        sl2 += w * Float(newL) * Float(newL)
                        if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            L[i] = Int8(newL)
                            sumlx = slx
                            suml2 = sl2
                            changed += 1
                        }
                    }
                }
            }
            if changed == 0 { break }
        }
        for i in 0..<n { L[i] += Int8(nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }
    for i in 0..<n {
        var l = nearestInt(iscale * x[i])
        l = Swift.max(-nmax, Swift.min(nmax - 1, l))
        L[i] = Int8(l + nmax)
    }
    return 1 / iscale
}

/// The part of `make_qkx2/3_quants` before the scale search: min/max (min clamped to at most 0),
/// weighted sums, the first rounding into `L` and its error. Returns nil when the search is
/// skipped; then `theMin` and `L` hold the result and `earlyScale` the scale to return.
struct QKXStart {
    var min: Float
    let max: Float
    let sumW: Float
    let sumX: Float
    var scale: Float
    var bestError: Float
}

@inline(__always)
func qkxStart(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
              _ theMin: inout Float, _ earlyScale: inout Float, _ useMAD: Bool, _ nstep: Int) -> QKXStart? {
    var min = x[0]
    var max = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < min { min = x[i] }
        if x[i] > max { max = x[i] }
        let w = weights[i]
        sumW += w
        sumX += w * x[i]
    }
    if min > 0 { min = 0 }
    if max <= min {
        for i in 0..<n { L[i] = 0 }
        theMin = -min
        earlyScale = 0
        return nil
    }
    let iscale = Float(nmax) / (max - min)
    let scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
        let l = nearestInt(iscale * (x[i] - min))
        L[i] = UInt8(Swift.max(0, Swift.min(nmax, l)))
        var diff = scale * Float(L[i]) + min - x[i]
        diff = useMAD ? abs(diff) : diff * diff
        bestError += weights[i] * diff
    }
    if nstep < 1 {
        theMin = -min
        earlyScale = scale
        return nil
    }
    return QKXStart(min: min, max: max, sumW: sumW, sumX: sumX, scale: scale, bestError: bestError)
}

/// ggml `make_qkx2_quants` / `make_qkx3_quants` (identical once the weights are given):
/// asymmetric quantization to [0, nmax] with a min, searching `nstep + 1` scales.
/// Returns the scale; `theMin` receives minus the min (a non-negative offset).
/// This is the plain port; `makeQKXQuants` computes the same bits faster.
func makeQKXQuantsReference(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                   _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                   _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMAD: Bool) -> Float {
    var earlyScale: Float = 0
    guard let start = qkxStart(n, nmax, x, weights, L, &theMin, &earlyScale, useMAD, nstep) else { return earlyScale }
    var min = start.min, scale = start.scale, bestError = start.bestError
    let max = start.max, sumW = start.sumW, sumX = start.sumX
    for step in 0...nstep {
        let iscale = (rmin + rdelta * Float(step) + Float(nmax)) / (max - min)
        var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
        for i in 0..<n {
            var l = nearestInt(iscale * (x[i] - min))
            l = Swift.max(0, Swift.min(nmax, l))
            Laux[i] = UInt8(l)
            let w = weights[i]
            sumL += w * Float(l)
            sumL2 += w * Float(l) * Float(l)
            sumXL += w * Float(l) * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        if D > 0 {
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                diff = useMAD ? abs(diff) : diff * diff
                error += weights[i] * diff
            }
            if error < bestError {
                for i in 0..<n { L[i] = Laux[i] }
                bestError = error
                scale = thisScale
                min = thisMin
            }
        }
    }
    theMin = -min
    return scale
}

/// ggml `make_qp_quants`: non-negative values to [0, nmax] with weighted refinement.
func makeQPQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
                  _ quantWeights: UnsafePointer<Float>) -> Float {
    var max: Float = 0
    for i in 0..<n { max = Swift.max(max, x[i]) }
    if max < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    var iscale = Float(nmax) / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMSE: Float = 0
    for i in 0..<n {
        let diff = x[i] - scale * Float(L[i])
        bestMSE += quantWeights[i] * diff * diff
    }
    for step in -4...4 where step != 0 {
        let iscaleStep = (0.1 * Float(step) + Float(nmax)) / max
        let scaleStep = 1 / iscaleStep
        var mse: Float = 0
        for i in 0..<n {
            var l = nearestInt(iscaleStep * x[i])
            l = Swift.min(nmax, l)
            let diff = x[i] - scaleStep * Float(l)
            mse += quantWeights[i] * diff * diff
        }
        if mse < bestMSE {
            bestMSE = mse
            iscale = iscaleStep
        }
    }
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        var l = nearestInt(iscale * x[i])
        l = Swift.min(nmax, l)
        L[i] = UInt8(truncatingIfNeeded: l)
        let w = quantWeights[i]
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = quantWeights[i]
            var slx = sumlx - w * x[i] * Float(L[i])
            var sl2 = suml2 - w * Float(L[i]) * Float(L[i])
            if slx > 0 && sl2 > 0 {
                var newL = nearestInt(x[i] * sl2 / slx)
                newL = Swift.min(nmax, newL)
                if newL != Int(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// `makeQKXQuantsReference` with the candidate scales evaluated four at a time: each
/// candidate's sums still run over i = 0..<n in order (so every float is bit-identical), but
/// the four independent accumulation chains overlap instead of waiting on each other.
/// A candidate depends on the min chosen so far, so the four are computed speculatively with
/// the current min and the group restarts after any accepted candidate that changes it.
/// `Laux` must hold 4 * n values.
func makeQKXQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                   _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                   _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMAD: Bool) -> Float {
    var earlyScale: Float = 0
    guard let start = qkxStart(n, nmax, x, weights, L, &theMin, &earlyScale, useMAD, nstep) else { return earlyScale }
    var min = start.min, scale = start.scale, bestError = start.bestError
    let max = start.max, sumW = start.sumW, sumX = start.sumX
    let A0 = Laux, A1 = Laux + n, A2 = Laux + 2 * n, A3 = Laux + 3 * n
    var step = 0
    while step <= nstep {
        let range = max - min
        let baseMin = min
        let s0 = (rmin + rdelta * Float(step) + Float(nmax)) / range
        let s1 = (rmin + rdelta * Float(step + 1) + Float(nmax)) / range
        let s2 = (rmin + rdelta * Float(step + 2) + Float(nmax)) / range
        let s3 = (rmin + rdelta * Float(step + 3) + Float(nmax)) / range
        var l0s: Float = 0, l0q: Float = 0, l0x: Float = 0
        var l1s: Float = 0, l1q: Float = 0, l1x: Float = 0
        var l2s: Float = 0, l2q: Float = 0, l2x: Float = 0
        var l3s: Float = 0, l3q: Float = 0, l3x: Float = 0
        for i in 0..<n {
            let d = x[i] - baseMin
            let w = weights[i]
            let q0 = Swift.max(0, Swift.min(nmax, nearestInt(s0 * d)))
            let q1 = Swift.max(0, Swift.min(nmax, nearestInt(s1 * d)))
            let q2 = Swift.max(0, Swift.min(nmax, nearestInt(s2 * d)))
            let q3 = Swift.max(0, Swift.min(nmax, nearestInt(s3 * d)))
            A0[i] = UInt8(q0); A1[i] = UInt8(q1); A2[i] = UInt8(q2); A3[i] = UInt8(q3)
            let f0 = Float(q0), f1 = Float(q1), f2 = Float(q2), f3 = Float(q3)
            l0s += w * f0; l0q += w * f0 * f0; l0x += w * f0 * x[i]
            l1s += w * f1; l1q += w * f1 * f1; l1x += w * f1 * x[i]
            l2s += w * f2; l2q += w * f2 * f2; l2x += w * f2 * x[i]
            l3s += w * f3; l3q += w * f3 * f3; l3x += w * f3 * x[i]
        }
        @inline(__always) func fit(_ sL: Float, _ sL2: Float, _ sXL: Float) -> (Bool, Float, Float) {
            let D = sumW * sL2 - sL * sL
            guard D > 0 else { return (false, 0, 0) }
            var thisScale = (sumW * sXL - sumX * sL) / D
            var thisMin = (sL2 * sumX - sL * sXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sXL / sL2
            }
            return (true, thisScale, thisMin)
        }
        let (v0, sc0, m0) = fit(l0s, l0q, l0x)
        let (v1, sc1, m1) = fit(l1s, l1q, l1x)
        let (v2, sc2, m2) = fit(l2s, l2q, l2x)
        let (v3, sc3, m3) = fit(l3s, l3q, l3x)
        var e0: Float = 0, e1: Float = 0, e2: Float = 0, e3: Float = 0
        for i in 0..<n {
            let w = weights[i]
            var d0 = sc0 * Float(A0[i]) + m0 - x[i]
            var d1 = sc1 * Float(A1[i]) + m1 - x[i]
            var d2 = sc2 * Float(A2[i]) + m2 - x[i]
            var d3 = sc3 * Float(A3[i]) + m3 - x[i]
            if useMAD {
                d0 = abs(d0); d1 = abs(d1); d2 = abs(d2); d3 = abs(d3)
            } else {
                d0 = d0 * d0; d1 = d1 * d1; d2 = d2 * d2; d3 = d3 * d3
            }
            e0 += w * d0; e1 += w * d1; e2 += w * d2; e3 += w * d3
        }
        // The candidates in step order, exactly as the sequential loop would see them.
        let candidates = [(v0, e0, sc0, m0, A0), (v1, e1, sc1, m1, A1), (v2, e2, sc2, m2, A2), (v3, e3, sc3, m3, A3)]
        var next = step + 4
        for k in 0..<4 where step + k <= nstep {
            let (valid, error, thisScale, thisMin, levels) = candidates[k]
            if valid && error < bestError {
                for i in 0..<n { L[i] = levels[i] }
                bestError = error
                scale = thisScale
                min = thisMin
                if min != baseMin {
                    next = step + k + 1
                    break
                }
            }
        }
        step = next
    }
    theMin = -min
    return scale
}

// MARK: shared by the IQ2 and IQ3 grid searches

/// ggml's `iq2_find_best_neighbour` / `iq3_find_best_neighbour` scan: among the grid points
/// `list[1...list[0]]` (rows of `width` odd values q at `grid`), the one minimizing
/// Σ weight[i] * (scale * q[i] - xval[i])², the first on ties. Writes its levels (q - 1) / 2 to
/// `L[0..<width]` and returns its index.
@inline(__always)
func bestGridNeighbour(_ list: UnsafePointer<UInt16>, grid: UnsafePointer<Int8>, width: Int, _ xval: UnsafePointer<Float>,
                       _ weight: UnsafePointer<Float>, _ scale: Float, _ L: UnsafeMutablePointer<Int8>) -> Int {
    var bestD2 = Float.greatestFiniteMagnitude
    var best = -1
    for j in 1...Int(list[0]) {
        let point = grid + width * Int(list[j])
        var d2: Float = 0
        for i in 0..<width {
            let diff = scale * Float(point[i]) - xval[i]
            d2 += weight[i] * diff * diff
        }
        if d2 < bestD2 {
            bestD2 = d2
            best = Int(list[j])
        }
    }
    precondition(best >= 0, "grid neighbour search found no point")
    for i in 0..<width { L[i] = (grid[width * best + i] - 1) / 2 }
    return best
}

/// Σ weight·x·q and Σ weight·q² over `n` values with q = 2L + 1 (the IQ2/IQ3 scale fit).
@inline(__always)
func oddLevelSums(_ xval: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ L: UnsafePointer<Int8>, _ n: Int) -> (qx: Float, q2: Float) {
    var sumqx: Float = 0, sumq2: Float = 0
    for i in 0..<n {
        let w = weight[i]
        let q = Float(2 * Int(L[i]) + 1)
        sumqx += w * xval[i] * q
        sumq2 += w * q * q
    }
    return (sumqx, sumq2)
}

/// 2 * mean(x²) over a superblock of QK_K values: the offset of the IQ types' importance weights.
@inline(__always)
func superblockSigma2(_ x: UnsafePointer<Float>) -> Float {
    var sumx2: Float = 0
    for i in 0..<QK_K { sumx2 += x[i] * x[i] }
    return 2 * sumx2 / Float(QK_K)
}

/// max |x[i]| over `n` >= 1 values.
@inline(__always)
func maxAbs(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var max = abs(x[0])
    for i in 1..<n { max = Swift.max(max, abs(x[i])) }
    return max
}
