#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The search tables of IQ1_S and IQ1_M over ggml's 2048-point 1-bit grid (`iq1s_grid`), computed
/// as ggml's `iq2xs_init_impl` does for `kgrid_1bit_2048` (named for this grid; the IQ2 grids are
/// built by the same ggml function elsewhere).
///
/// A grid point is 8 levels in {0, 1, 2} (value -1, 0, 1 plus one). A group of 8 levels is keyed as
/// ggml keys it: level j in bits 2j...2j+1 (`u |= L[j] << 2j`). `map[key]` is the grid index of
/// that point, or, off the grid, `-(offset + 1)` where `neighbours[offset]` is a count followed by
/// that many grid indices: every point at one of the 3 smallest squared distances from the key,
/// by distance then index (ggml's `nwant` 3 for the 1-bit grid).
///
/// ggml fills neighbour lists for all 43,692 keys, including keys with a level-3 field that no
/// IQ1 quantizer can form; here only keys with levels 0...2 get lists (the lists themselves are
/// the same), the others map to `Int32.min`.
final class IQ1Grid: @unchecked Sendable {
    static let shared = IQ1Grid()

    static let size = 2048
    /// ggml's `kmap_size`: one past the largest key (all fields 2 is 0xAAAA).
    static let keyCount = 43_692

    /// `size * 8` levels (0, 1, 2), grid point k at `8k`. Immutable once built.
    let levels: UnsafeMutablePointer<UInt8>
    let map: UnsafeMutablePointer<Int32>
    let neighbours: UnsafeMutablePointer<UInt16>

    private init() {
        let size = IQ1Grid.size, keyCount = IQ1Grid.keyCount
        levels = .allocate(capacity: 8 * size)
        for i in 0..<(8 * size) { levels[i] = UInt8(IQGrids.iq1s[i] + 1) }
        map = .allocate(capacity: keyCount)
        map.initialize(repeating: -1, count: keyCount)
        for k in 0..<size {
            var key = 0
            for j in 0..<8 { key |= Int(levels[8 * k + j]) << (2 * j) }
            map[key] = Int32(k)
        }
        var lists: [UInt16] = []
        var distance = [Int](repeating: 0, count: size)
        for key in 0..<keyCount where map[key] < 0 {
            var reachable = true
            for j in 0..<8 where (key >> (2 * j)) & 3 == 3 { reachable = false }
            guard reachable else {
                map[key] = Int32.min
                continue
            }
            // ggml sorts (squared distance, index) pairs of the odd positions 2l+1 and keeps the
            // points of the 3 smallest distances; scanning the distances 3 times is the same list.
            var nearest = [Int.max, Int.max, Int.max]
            for k in 0..<size {
                var d2 = 0
                for j in 0..<8 {
                    let diff = 2 * (Int(levels[8 * k + j]) - ((key >> (2 * j)) & 3))
                    d2 += diff * diff
                }
                distance[k] = d2
                if d2 < nearest[0] {
                    nearest = [d2, nearest[0], nearest[1]]
                } else if d2 > nearest[0] && d2 < nearest[1] {
                    nearest = [nearest[0], d2, nearest[1]]
                } else if d2 > nearest[1] && d2 < nearest[2] {
                    nearest[2] = d2
                }
            }
            map[key] = -Int32(lists.count + 1)
            let start = lists.count
            lists.append(0)
            for d2 in nearest where d2 != Int.max {
                for k in 0..<size where distance[k] == d2 { lists.append(UInt16(k)) }
            }
            lists[start] = UInt16(lists.count - start - 1)
        }
        neighbours = .allocate(capacity: lists.count)
        neighbours.initialize(from: lists, count: lists.count)
    }

    /// ggml `iq1_find_best_neighbour2`: the grid point that minimizes the weighted squared error
    /// of `scale * xg[level] - x[j]` over the 8 values, among the neighbours of the off-grid `key`;
    /// its levels are written to `L`. When no neighbour scores below `Float.greatestFiniteMagnitude`
    /// (infinite or NaN errors) ggml scans the whole grid, indexing `x` by the grid index (a bug
    /// that reads past the 8 values, then aborts if still nothing); this scan uses `x[j]` and falls
    /// back to the first neighbour instead of aborting.
    @inline(__always)
    func bestNeighbour(key: Int, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, scale: Float,
                       _ xg: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Int {
        let list = neighbours + Int(-map[key] - 1)
        var best = Float.greatestFiniteMagnitude
        var index = -1
        for n in 1...Int(list[0]) {
            let k = Int(list[n])
            let d2 = error(k, x, weight, scale, xg)
            if d2 < best {
                best = d2
                index = k
            }
        }
        if index < 0 {
            for k in 0..<IQ1Grid.size {
                let d2 = error(k, x, weight, scale, xg)
                if d2 < best {
                    best = d2
                    index = k
                }
            }
        }
        if index < 0 { index = Int(list[1]) }
        for j in 0..<8 { L[j] = Int8(levels[8 * index + j]) }
        return index
    }

    @inline(__always)
    private func error(_ k: Int, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ scale: Float,
                       _ xg: UnsafePointer<Float>) -> Float {
        let g = levels + 8 * k
        var d2: Float = 0
        for j in 0..<8 {
            let diff = scale * xg[Int(g[j])] - x[j]
            d2 += weight[j] * diff * diff
        }
        return d2
    }

    /// ggml's `qsort(pairs, count, 8, iq1_sort_helper)`: (value, index bits) pairs by value. The
    /// comparator is not a total order (equal values tie), so the C library's qsort is called to
    /// order ties as ggml's build does.
    static func sortPairs(_ pairs: UnsafeMutablePointer<Float>, count: Int) {
        qsort(pairs, count, 2 * MemoryLayout<Float>.size) { left, right in
            let l = left!.load(as: Float.self), r = right!.load(as: Float.self)
            return l < r ? -1 : l > r ? 1 : 0
        }
    }
}
