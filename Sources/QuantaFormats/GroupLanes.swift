import QuantaCore

// Sixteen independent quantization groups searched side by side, one per SIMD lane.
//
// ggml's scale searches (`make_qkx2/3_quants`, `make_qx_quants`) add their sums in element
// order, so one group's search is a chain of dependent float additions: the scalar code waits
// on latency. Groups are independent, so here lane k of every vector belongs to group k and
// performs exactly the scalar code's sequence of IEEE operations (Swift does not contract a*b+c
// into fused multiply-adds, for vectors as for scalars); branches become per-lane selects.
// Every lane's result is therefore the scalar function's, bit for bit (`FastPathTests`).
//
// Rounding uses the float form of ggml's `nearest_int`: (v + 1.5·2²³) - 1.5·2²³ is the nearest
// integer, ties to even, for |v| < 2²². The scale searches stay inside that range except for
// degenerate groups; `makeQKX` reports those so the caller can take the scalar path.

typealias Lane16 = SIMD16<Float>

/// Transposed working memory for up to 16 groups of at most 32 values: `x[i]` holds element i
/// of every group, one per lane. Part of `QuantScratch`, so the block loops allocate nothing.
final class GroupLanes {
    static let width = 16
    static let maxLength = 32
    let x: UnsafeMutablePointer<Lane16>
    let w: UnsafeMutablePointer<Lane16>
    /// Best levels found (as floats: 0...nmax for `makeQKX`, l + nmax for `makeQX`).
    let levels: UnsafeMutablePointer<Lane16>
    let candidate: UnsafeMutablePointer<Lane16>
    /// Per-lane results of the last search.
    var scale = Lane16.zero
    var theMin = Lane16.zero

    init() {
        x = .allocate(capacity: Self.maxLength)
        w = .allocate(capacity: Self.maxLength)
        levels = .allocate(capacity: Self.maxLength)
        candidate = .allocate(capacity: Self.maxLength)
        for p in [x, w, levels, candidate] { p.initialize(repeating: .zero, count: Self.maxLength) }
    }

    deinit {
        for p in [x, w, levels, candidate] { p.deallocate() }
    }

    /// Zeroes every lane's values and weights (unused lanes then search a flat group, harmlessly).
    func clear(_ n: Int) {
        for i in 0..<n {
            x[i] = .zero
            w[i] = .zero
        }
    }

    /// Puts group `lane`'s `n` values (and weights, when given) into its lane.
    @inline(__always)
    func load(lane: Int, _ values: UnsafePointer<Float>, _ weights: UnsafePointer<Float>?, _ n: Int) {
        for i in 0..<n { x[i][lane] = values[i] }
        if let weights { for i in 0..<n { w[i][lane] = weights[i] } }
    }

    /// Searches `groups` groups sixteen at a time: `load(k, g)` puts group g into lane k (the
    /// lanes a last, short batch leaves unused are cleared to `n` zeros), `search()` runs on the
    /// batch, then `finish(k, g)` reads lane k's result for group g.
    @inline(__always)
    func batches(of groups: Int, length n: Int, load: (Int, Int) -> Void, search: () -> Void, finish: (Int, Int) -> Void) {
        for first in stride(from: 0, to: groups, by: Self.width) {
            let count = Swift.min(Self.width, groups - first)
            if count < Self.width { clear(n) }
            for k in 0..<count { load(k, first + k) }
            search()
            for k in 0..<count { finish(k, first + k) }
        }
    }

    /// Lane `lane`'s best levels as bytes (`levels` holds small non-negative integers).
    @inline(__always)
    func storeLevels(lane: Int, _ out: UnsafeMutablePointer<UInt8>, _ n: Int) {
        for i in 0..<n { out[i] = UInt8(levels[i][lane]) }
    }

    /// Lane `lane`'s best levels as signed bytes (the `makeQX` layout, l + nmax or 0).
    @inline(__always)
    func storeLevels(lane: Int, _ out: UnsafeMutablePointer<Int8>, _ n: Int) {
        for i in 0..<n { out[i] = Int8(levels[i][lane]) }
    }

    // The standard library's generic `replacing(with:where:)`, `clamped`, `pointwiseMax` and
    // `any` compile to per-lane branches; these bitwise forms stay in vector registers.

    typealias Mask = SIMDMask<SIMD16<Int32>>

    @inline(__always)
    static func round(_ v: Lane16) -> Lane16 { (v + 12582912) - 12582912 }

    /// `b` where `m` is set, else `a`.
    @inline(__always)
    static func select(_ a: Lane16, _ b: Lane16, _ m: Mask) -> Lane16 {
        let mask = unsafeBitCast(m, to: SIMD16<UInt32>.self)
        let x = unsafeBitCast(a, to: SIMD16<UInt32>.self), y = unsafeBitCast(b, to: SIMD16<UInt32>.self)
        return unsafeBitCast(x ^ ((x ^ y) & mask), to: Lane16.self)
    }

    /// `v` clamped to [lo, hi] as ggml's `MAX(lo, MIN(hi, v))` (no NaN reaches it).
    @inline(__always)
    static func clamp(_ v: Lane16, _ lo: Lane16, _ hi: Lane16) -> Lane16 {
        let upper = select(v, hi, v .> hi)
        return select(upper, lo, upper .< lo)
    }

    /// IEEE negation (the generic SIMD prefix minus computes 0 - v, which maps +0 to +0).
    @inline(__always)
    static func negate(_ v: Lane16) -> Lane16 {
        unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) ^ 0x8000_0000, to: Lane16.self)
    }

    @inline(__always)
    static func anySet(_ m: Mask) -> Bool {
        let t = unsafeBitCast(m, to: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64).self)
        return (t.0 | t.1 | t.2 | t.3 | t.4 | t.5 | t.6 | t.7) != 0
    }

    @inline(__always)
    static func magnitude(_ v: Lane16) -> Lane16 {
        unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: Lane16.self)
    }

    /// Per lane, the first value of largest magnitude among x[0..<n] and that magnitude (0, 0
    /// when all are 0), as `maxByMagnitude` finds them.
    @inline(__always)
    func largestMagnitude(_ n: Int) -> (max: Lane16, amax: Lane16) {
        var max = Lane16.zero, amax = Lane16.zero
        for i in 0..<n {
            let ax = Self.magnitude(x[i])
            let larger = ax .> amax
            amax = Self.select(amax, ax, larger)
            max = Self.select(max, x[i], larger)
        }
        return (max, amax)
    }

    /// Lane `lane`'s `makeQKX` result: its scale, with minus its min in `theMin` and its
    /// levels in `out[0..<n]`.
    @inline(__always)
    func result(lane: Int, theMin min: inout Float, levels out: UnsafeMutablePointer<UInt8>, _ n: Int) -> Float {
        min = theMin[lane]
        storeLevels(lane: lane, out, n)
        return scale[lane]
    }

    /// `makeQKXQuantsReference` on every lane: groups of `n` values `x` with weights `w`, levels
    /// 0...nmax, `nstep + 1` candidate scales (`nstep` >= 1). Results in `levels`, `scale` and
    /// `theMin` (minus the min). Returns false when a lane rounded a value of magnitude
    /// `roundingLimit` or more (beyond ±2²², the float rounding is not ggml's); the results are
    /// then not to be used. The values stay below nmax + rmin + rdelta·nstep unless a fitted min
    /// lies above a group's smallest value.
    func makeQKX(_ n: Int, _ nmax: Int, rmin: Float, rdelta: Float, nstep: Int, useMAD: Bool,
                 roundingLimit: Float = 4194303) -> Bool {
        precondition(n >= 1 && n <= Self.maxLength && nstep >= 1)
        let top = Lane16(repeating: Float(nmax))
        var min = x[0], max = x[0]
        var sumW = w[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            let xi = x[i], wi = w[i]
            min = Self.select(min, xi, xi .< min)
            max = Self.select(max, xi, xi .> max)
            sumW += wi
            sumX += wi * xi
        }
        min = Self.select(min, .zero, min .> 0)
        let flat = max .<= min
        let flatMin = min
        let iscale0 = top / (max - min)
        var scale = 1 / iscale0
        var bestError = Lane16.zero
        for i in 0..<n {
            let l = Self.clamp(Self.round(iscale0 * (x[i] - min)), .zero, top)
            levels[i] = l
            var diff = scale * l + min - x[i]
            diff = useMAD ? Self.magnitude(diff) : diff * diff
            bestError += w[i] * diff
        }
        var largest = Lane16.zero
        for step in 0...nstep {
            let iscale = Lane16(repeating: rmin + rdelta * Float(step) + Float(nmax)) / (max - min)
            var sumL = Lane16.zero, sumL2 = Lane16.zero, sumXL = Lane16.zero
            for i in 0..<n {
                let xi = x[i]
                let v = iscale * (xi - min)
                let magnitude = Self.magnitude(v)
                largest = Self.select(largest, magnitude, magnitude .> largest)
                let l = Self.clamp(Self.round(v), .zero, top)
                candidate[i] = l
                let wl = w[i] * l
                sumL += wl
                sumL2 += wl * l
                sumXL += wl * xi
            }
            let D = sumW * sumL2 - sumL * sumL
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            let positive = thisMin .> 0
            thisMin = Self.select(thisMin, .zero, positive)
            thisScale = Self.select(thisScale, sumXL / sumL2, positive)
            var error = Lane16.zero
            for i in 0..<n {
                var diff = thisScale * candidate[i] + thisMin - x[i]
                diff = useMAD ? Self.magnitude(diff) : diff * diff
                error += w[i] * diff
            }
            let better = (D .> 0) .& (error .< bestError) .& .!flat
            if Self.anySet(better) {
                for i in 0..<n { levels[i] = Self.select(levels[i], candidate[i], better) }
                bestError = Self.select(bestError, error, better)
                scale = Self.select(scale, thisScale, better)
                min = Self.select(min, thisMin, better)
            }
        }
        if Self.anySet(flat) {
            for i in 0..<n { levels[i] = Self.select(levels[i], .zero, flat) }
            scale = Self.select(scale, .zero, flat)
            min = Self.select(min, flatMin, flat)
        }
        self.scale = scale
        theMin = Self.negate(min)
        largest = Self.select(largest, .zero, flat)
        return !Self.anySet(largest .>= Lane16(repeating: roundingLimit))
    }

    /// `makeQXQuants` with `rmseType` 1 on every lane: groups of `n` values `x`, levels
    /// -nmax...nmax-1 stored as l + nmax (0 for an all-zero group), weights `w` when
    /// `weighted`, else x². Result in `levels` and `scale`.
    func makeQX(_ n: Int, _ nmax: Int, weighted: Bool) {
        precondition(n >= 1 && n <= Self.maxLength)
        let (max, amax) = largestMagnitude(n)
        let zero = amax .< groupMaxEps
        let low = Lane16(repeating: -Float(nmax)), high = Lane16(repeating: Float(nmax - 1))
        let offset = Lane16(repeating: Float(nmax))
        var iscale = Lane16(repeating: -Float(nmax)) / max
        var sumlx = Lane16.zero, suml2 = Lane16.zero
        for i in 0..<n {
            let xi = x[i]
            let l = Self.clamp(Self.round(iscale * xi), low, high)
            levels[i] = l + offset
            let wi = weighted ? w[i] : xi * xi
            sumlx += wi * xi * l
            suml2 += wi * l * l
        }
        var scale = sumlx / suml2
        scale = Self.select(scale, .zero, suml2 .== 0)
        var best = scale * sumlx
        for step in -9...9 where step != 0 {
            iscale = Lane16(repeating: -(Float(nmax) + 0.1 * Float(step))) / max
            sumlx = .zero
            suml2 = .zero
            for i in 0..<n {
                let xi = x[i]
                let l = Self.clamp(Self.round(iscale * xi), low, high)
                candidate[i] = l
                let wi = weighted ? w[i] : xi * xi
                sumlx += wi * xi * l
                suml2 += wi * l * l
            }
            let better = (suml2 .> 0) .& (sumlx * sumlx .> best * suml2) .& .!zero
            if Self.anySet(better) {
                for i in 0..<n { levels[i] = Self.select(levels[i], candidate[i] + offset, better) }
                scale = Self.select(scale, sumlx / suml2, better)
                best = Self.select(best, scale * sumlx, better)
            }
        }
        if Self.anySet(zero) {
            for i in 0..<n { levels[i] = Self.select(levels[i], .zero, zero) }
            scale = Self.select(scale, .zero, zero)
        }
        self.scale = scale
    }

    /// ggml's `nearest_int` clamped to [lo, hi], exactly as the integer code computes it for any
    /// finite v (beyond ±2²² the trick's wrapped result, then the clamp), returned as a float.
    @inline(__always)
    static func nearestIntClamped(_ v: Lane16, _ lo: Int32, _ hi: Int32) -> Lane16 {
        var l = (unsafeBitCast(v + 12582912, to: SIMD16<Int32>.self) & 0x007F_FFFF) &- 0x0040_0000
        let low = SIMD16<Int32>(repeating: lo), high = SIMD16<Int32>(repeating: hi)
        l = l ^ ((l ^ high) & unsafeBitCast(l .> high, to: SIMD16<Int32>.self))
        l = l ^ ((l ^ low) & unsafeBitCast(l .< low, to: SIMD16<Int32>.self))
        return unsafeBitCast(l &+ 0x4B40_0000, to: Lane16.self) - 12582912
    }

    /// `makeQ3Quants` with `doRMSE` on every lane: groups of `n` values `x`, levels
    /// -nmax...nmax-1 refined with weights x², stored as l + nmax (0 for an all-zero group).
    /// Result in `levels` and `scale`.
    func makeQ3(_ n: Int, _ nmax: Int) {
        precondition(n >= 1 && n <= Self.maxLength)
        let (max, amax) = largestMagnitude(n)
        let zero = amax .< groupMaxEps
        let low = Lane16(repeating: -Float(nmax)), high = Lane16(repeating: Float(nmax - 1))
        let iscale = Lane16(repeating: -Float(nmax)) / max
        var sumlx = Lane16.zero, suml2 = Lane16.zero
        for i in 0..<n {
            let xi = x[i]
            let l = Self.clamp(Self.round(iscale * xi), low, high)
            levels[i] = l
            let wi = xi * xi
            sumlx += wi * xi * l
            suml2 += wi * l * l
        }
        for _ in 0..<5 {
            var changed = Mask(repeating: false)
            for i in 0..<n {
                let xi = x[i], li = levels[i]
                let wi = xi * xi
                var slx = sumlx - wi * xi * li
                var sl2 = suml2 - wi * li * li
                let newL = Self.nearestIntClamped(xi * sl2 / slx, Int32(-nmax), Int32(nmax - 1))
                slx += wi * xi * newL
                sl2 += wi * newL * newL
                let accept = (sumlx - wi * xi * li .> 0) .& (newL .!= li) .& (sl2 .> 0)
                    .& (slx * slx * suml2 .> sumlx * sumlx * sl2) .& .!zero
                levels[i] = Self.select(li, newL, accept)
                sumlx = Self.select(sumlx, slx, accept)
                suml2 = Self.select(suml2, sl2, accept)
                changed = changed .| accept
            }
            if !Self.anySet(changed) { break }
        }
        let offset = Lane16(repeating: Float(nmax))
        for i in 0..<n { levels[i] = Self.select(levels[i] + offset, .zero, zero) }
        var scale = sumlx / suml2
        scale = Self.select(scale, .zero, .!(suml2 .> 0))
        self.scale = Self.select(scale, .zero, zero)
    }

    /// One threshold of `nearestValue`: where t >= v, the pair moves up by the given gaps.
    @inline(__always)
    static func passing(_ t: Lane16, _ v: Float, _ lowGap: Float, _ highGap: Float, _ low: inout Lane16, _ high: inout Lane16) {
        let reached = unsafeBitCast(t .>= Lane16(repeating: v), to: SIMD16<UInt32>.self)
        low += unsafeBitCast(unsafeBitCast(Lane16(repeating: lowGap), to: SIMD16<UInt32>.self) & reached, to: Lane16.self)
        high += unsafeBitCast(unsafeBitCast(Lane16(repeating: highGap), to: SIMD16<UInt32>.self) & reached, to: Lane16.self)
    }

    /// The IQ4 value (`IQ4Quants.values`) nearest to `t` as ggml's `best_index_int8` picks it
    /// (the lower one on ties): v[ml] and v[ml + 1], with ml the number of values after the first
    /// that are <= t, built from the exact integer gaps.
    @inline(__always)
    static func nearestValue(_ t: Lane16) -> Lane16 {
        var low = Lane16(repeating: -127), high = Lane16(repeating: -104)
        passing(t, -104, 23, 21, &low, &high)
        passing(t, -83, 21, 18, &low, &high)
        passing(t, -65, 18, 16, &low, &high)
        passing(t, -49, 16, 14, &low, &high)
        passing(t, -35, 14, 13, &low, &high)
        passing(t, -22, 13, 12, &low, &high)
        passing(t, -10, 12, 11, &low, &high)
        passing(t, 1, 11, 12, &low, &high)
        passing(t, 13, 12, 12, &low, &high)
        passing(t, 25, 12, 13, &low, &high)
        passing(t, 38, 13, 15, &low, &high)
        passing(t, 53, 15, 16, &low, &high)
        passing(t, 69, 16, 20, &low, &high)
        passing(t, 89, 20, 24, &low, &high)
        return select(high, low, t - low .< high - t)
    }

    /// `IQ4Quants.searchBlockReference` on every lane (groups of `n` values with weights `w`).
    /// Result in `scale`.
    func searchIQ4(_ n: Int, ntry: Int) {
        precondition(n >= 1 && n <= Self.maxLength)
        let (max, amax) = largestMagnitude(n)
        let zero = amax .< groupMaxEps
        let v0 = Lane16(repeating: Float(IQ4Quants.values[0]))
        var d = (ntry > 0 ? Self.negate(max) : max) / v0
        var id = 1 / d
        var sumqx = Lane16.zero, sumq2 = Lane16.zero
        for j in 0..<n {
            let q = Self.nearestValue(id * x[j])
            let wq = w[j] * q
            sumqx += wq * x[j]
            sumq2 += wq * q
        }
        d = sumqx / sumq2
        var best = d * sumqx
        if ntry >= 0 {
            for itry in -ntry...ntry {
                id = Lane16(repeating: Float(itry + Int(IQ4Quants.values[0]))) / max
                sumqx = .zero
                sumq2 = .zero
                for j in 0..<n {
                    let q = Self.nearestValue(id * x[j])
                    let wq = w[j] * q
                    sumqx += wq * x[j]
                    sumq2 += wq * q
                }
                let better = (sumq2 .> 0) .& (sumqx * sumqx .> best * sumq2)
                d = Self.select(d, sumqx / sumq2, better)
                best = Self.select(best, d * sumqx, better)
            }
        }
        scale = Self.select(d, .zero, zero)
    }
}

extension QuantScratch {
    /// `make_qkx2/3_quants` on `count` (at most 16) consecutive groups of `n` values at `x`, side
    /// by side in `lanes`, each group's weights written by `weights(k, out)` (it may be called
    /// twice per group); where the lanes decline (`GroupLanes.makeQKX`), every group takes the
    /// scalar search. Leaves group k's scale in `scales[k]`, minus its min in `mins[k]` and its
    /// levels in `L[n·k..<n·(k + 1)]`.
    @inline(__always)
    func searchQKX(_ x: UnsafePointer<Float>, count: Int, n: Int, nmax: Int, rmin: Float, rdelta: Float, nstep: Int, useMAD: Bool,
                   weights: (Int, UnsafeMutablePointer<Float>) -> Void) {
        if count < GroupLanes.width { lanes.clear(n) }
        for k in 0..<count {
            weights(k, self.weights)
            lanes.load(lane: k, x + n * k, self.weights, n)
        }
        if lanes.makeQKX(n, nmax, rmin: rmin, rdelta: rdelta, nstep: nstep, useMAD: useMAD) {
            for k in 0..<count { scales[k] = lanes.result(lane: k, theMin: &mins[k], levels: L + n * k, n) }
            return
        }
        for k in 0..<count {
            weights(k, self.weights)
            scales[k] = makeQKXQuants(n, nmax, x + n * k, self.weights, L + n * k, &mins[k], Laux, rmin, rdelta, nstep, useMAD)
        }
    }
}

