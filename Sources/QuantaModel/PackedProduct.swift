import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// C[m, n] (+)= A[m, k] · B[n, k]ᵀ for linear layers where no summation order is prescribed,
/// in the GotoBLAS/BLIS form: A is packed once into tiles of 12 rows (k steps of 12 values),
/// B into panels of 32 columns (k steps of 32 values), and a 12 × 32 register tile (24
/// sixteen-float accumulators) takes per k step two panel loads and twelve broadcasts for
/// 24 fused multiply-adds. Products of k > 512 run in equal blocks of at most 512 steps, each
/// added to C, so a tile of A stays in L1 and a block of panels in L2.
///
/// Workers take contiguous ranges of B's panels. Every element is summed the same way (its
/// k blocks in order, each block's terms in increasing k) whichever worker computes it, so the
/// results do not depend on the thread count. Meant for CPUs with 512-bit vectors: with
/// narrower ones the 24 accumulators do not fit in registers.
public enum PackedProduct {
    typealias V = SIMD16<Float>

    /// Rows of A per register tile.
    static let tileRows = 12
    /// Columns of B per panel (two 16-float vectors).
    static let panelColumns = 32
    /// Most k steps per block.
    static let maxDepth = 512
    /// Bytes of packed panels a worker keeps for one block of k steps (held in its L2).
    static let panelBytes = 512 * 1024

    /// C[m, n] (row stride `ldc` >= n) = A[m, k] · B[n, k]ᵀ, or C += it with `accumulate`;
    /// A and B have contiguous rows of k floats. Empty shapes do nothing; k == 0 leaves C as it
    /// is with `accumulate` and zeroes it otherwise.
    public static func product(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                               _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, threads: Int) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let mr = tileRows, nr = panelColumns
        let blocks = (k + maxDepth - 1) / maxDepth, depth = (k + blocks - 1) / blocks
        let tiles = (m + mr - 1) / mr, panels = (n + nr - 1) / nr
        let panelsPerBlock = max(1, panelBytes / (depth * nr * 4))
        let packedA = ScratchPool.shared.take(tiles * mr * k)
        defer { ScratchPool.shared.give(packedA) }
        nonisolated(unsafe) let (pa, pb, pc, ap) = (a, b, c, packedA.pointer)

        let packers = max(1, min(threads, tiles))
        let packA: @Sendable (Int) -> Void = { worker in
            for t in stride(from: worker, to: tiles, by: packers) { packRows(pa, m: m, k: k, tile: t, into: ap + t * mr * k) }
        }
        if packers == 1 { packA(0) } else { DispatchQueue.concurrentPerform(iterations: packers, execute: packA) }

        let workers = max(1, min(threads, panels))
        let run: @Sendable (Int) -> Void = { worker in
            let p0 = panels * worker / workers, p1 = panels * (worker + 1) / workers
            let groups = (p1 - p0 + panelsPerBlock - 1) / panelsPerBlock
            let packedB = ScratchPool.shared.take(min(panelsPerBlock, p1 - p0) * depth * nr + mr * nr)
            defer { ScratchPool.shared.give(packedB) }
            let bp = packedB.pointer, edge = bp + min(panelsPerBlock, p1 - p0) * depth * nr
            for group in 0..<groups {
                let q0 = p0 + (p1 - p0) * group / groups, q1 = p0 + (p1 - p0) * (group + 1) / groups
                var k0 = 0
                while k0 < k {
                    let kn = min(depth, k - k0), add = accumulate || k0 > 0
                    for p in q0..<q1 { packColumns(pb, n: n, k: k, panel: p, from: k0, steps: kn, into: bp + (p - q0) * kn * nr) }
                    for t in 0..<tiles {
                        let tile = UnsafePointer(ap + t * mr * k + k0 * mr), rows = min(mr, m - t * mr)
                        for p in q0..<q1 {
                            let panel = UnsafePointer(bp + (p - q0) * kn * nr), columns = min(nr, n - p * nr)
                            let out = pc + t * mr * ldc + p * nr
                            if rows == mr && columns == nr {
                                kernel(tile, panel, kn, out, ldc: ldc, add: add)
                            } else {
                                kernel(tile, panel, kn, edge, ldc: nr, add: false)
                                for r in 0..<rows {
                                    let o = out + r * ldc, e = edge + r * nr
                                    if add { for j in 0..<columns { o[j] += e[j] } } else { o.update(from: e, count: columns) }
                                }
                            }
                        }
                    }
                    k0 += kn
                }
            }
        }
        if workers == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
    }

    /// Rows 12t..<12t+12 of A as k steps of 12 values; rows at or past m are zeros.
    private static func packRows(_ a: UnsafePointer<Float>, m: Int, k: Int, tile t: Int, into dst: UnsafeMutablePointer<Float>) {
        let mr = tileRows, rows = min(mr, m - t * mr), src = a + t * mr * k
        if rows == mr {
            for l in 0..<k {
                let o = dst + l * mr
                for r in 0..<mr { o[r] = src[r * k + l] }
            }
        } else {
            for r in 0..<mr {
                if r < rows { for l in 0..<k { dst[l * mr + r] = src[r * k + l] } } else { for l in 0..<k { dst[l * mr + r] = 0 } }
            }
        }
    }

    /// Columns 32p..<32p+32 of Bᵀ (rows of B) over k steps from..<from+steps, as steps of 32
    /// values; columns at or past n are zeros.
    private static func packColumns(_ b: UnsafePointer<Float>, n: Int, k: Int, panel p: Int, from k0: Int, steps: Int,
                                    into dst: UnsafeMutablePointer<Float>) {
        let nr = panelColumns
        for jj in 0..<nr {
            let j = p * nr + jj
            if j < n {
                let src = b + j * k + k0
                for l in 0..<steps { dst[l * nr + jj] = src[l] }
            } else {
                for l in 0..<steps { dst[l * nr + jj] = 0 }
            }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    private static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ add: Bool) {
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: add ? v + raw.loadUnaligned(as: V.self) : v, as: V.self)
    }

    /// C[0..<12, 0..<32] (row stride ldc) (+)= the packed tile of A times the packed panel of B
    /// over `steps` k steps.
    private static func kernel(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ steps: Int, _ c: UnsafeMutablePointer<Float>,
                               ldc: Int, add: Bool) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        var c80 = V(), c81 = V(), c90 = V(), c91 = V(), ca0 = V(), ca1 = V(), cb0 = V(), cb1 = V()
        var x = a, w = b
        let end = b + steps * panelColumns
        while w < end {
            let w0 = load(w), w1 = load(w + 16)
            var s = V(repeating: x[0]); c00 = c00.addingProduct(s, w0); c01 = c01.addingProduct(s, w1)
            s = V(repeating: x[1]); c10 = c10.addingProduct(s, w0); c11 = c11.addingProduct(s, w1)
            s = V(repeating: x[2]); c20 = c20.addingProduct(s, w0); c21 = c21.addingProduct(s, w1)
            s = V(repeating: x[3]); c30 = c30.addingProduct(s, w0); c31 = c31.addingProduct(s, w1)
            s = V(repeating: x[4]); c40 = c40.addingProduct(s, w0); c41 = c41.addingProduct(s, w1)
            s = V(repeating: x[5]); c50 = c50.addingProduct(s, w0); c51 = c51.addingProduct(s, w1)
            s = V(repeating: x[6]); c60 = c60.addingProduct(s, w0); c61 = c61.addingProduct(s, w1)
            s = V(repeating: x[7]); c70 = c70.addingProduct(s, w0); c71 = c71.addingProduct(s, w1)
            s = V(repeating: x[8]); c80 = c80.addingProduct(s, w0); c81 = c81.addingProduct(s, w1)
            s = V(repeating: x[9]); c90 = c90.addingProduct(s, w0); c91 = c91.addingProduct(s, w1)
            s = V(repeating: x[10]); ca0 = ca0.addingProduct(s, w0); ca1 = ca1.addingProduct(s, w1)
            s = V(repeating: x[11]); cb0 = cb0.addingProduct(s, w0); cb1 = cb1.addingProduct(s, w1)
            w += panelColumns
            x += tileRows
        }
        store(c00, c, add); store(c01, c + 16, add)
        store(c10, c + ldc, add); store(c11, c + ldc + 16, add)
        store(c20, c + 2 * ldc, add); store(c21, c + 2 * ldc + 16, add)
        store(c30, c + 3 * ldc, add); store(c31, c + 3 * ldc + 16, add)
        store(c40, c + 4 * ldc, add); store(c41, c + 4 * ldc + 16, add)
        store(c50, c + 5 * ldc, add); store(c51, c + 5 * ldc + 16, add)
        store(c60, c + 6 * ldc, add); store(c61, c + 6 * ldc + 16, add)
        store(c70, c + 7 * ldc, add); store(c71, c + 7 * ldc + 16, add)
        store(c80, c + 8 * ldc, add); store(c81, c + 8 * ldc + 16, add)
        store(c90, c + 9 * ldc, add); store(c91, c + 9 * ldc + 16, add)
        store(ca0, c + 10 * ldc, add); store(ca1, c + 10 * ldc + 16, add)
        store(cb0, c + 11 * ldc, add); store(cb1, c + 11 * ldc + 16, add)
    }
}

/// Float buffers reused across calls, so products that run hundreds of times per pass do not
/// map and fault in fresh pages each time. Thread-safe; keeps at most `kept` buffers.
final class ScratchPool: @unchecked Sendable {
    static let shared = ScratchPool()
    static let kept = 8

    struct Buffer {
        let pointer: UnsafeMutablePointer<Float>
        let capacity: Int
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var free: [Buffer] = []

    private init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    /// A buffer of at least `count` floats (contents undefined), to `give` back after use.
    func take(_ count: Int) -> Buffer {
        pthread_mutex_lock(mutex)
        let index = free.indices.filter { free[$0].capacity >= count }.min { free[$0].capacity < free[$1].capacity }
        let found = index.map { free.remove(at: $0) }
        pthread_mutex_unlock(mutex)
        if let found { return found }
        let capacity = max(count, 16)
        return Buffer(pointer: .allocate(capacity: capacity), capacity: capacity)
    }

    /// Returns `buffer` to the pool; beyond `kept` buffers the smallest is freed.
    func give(_ buffer: Buffer) {
        pthread_mutex_lock(mutex)
        free.append(buffer)
        var dropped: Buffer?
        if free.count > Self.kept, let smallest = free.indices.min(by: { free[$0].capacity < free[$1].capacity }) {
            dropped = free.remove(at: smallest)
        }
        pthread_mutex_unlock(mutex)
        dropped?.pointer.deallocate()
    }
}
