// The search tables of ggml's grid quantizers (IQ2_XXS, IQ2_XS, IQ2_S; the same init serves the
// 2048-point grid of IQ1_S/IQ1_M): ggml `iq2xs_init_impl` and `iq2_find_best_neighbour`.

/// One grid's tables, built as ggml's `iq2xs_init_impl` builds them.
///
/// A grid point is 8 levels in 0...2 (2 bits each); its *key* packs them as `l0 | l1 << 2 | ... | l7 << 14`
/// (ggml's `kgrid_*` uint16 value). `map[key]` is the point's index for keys on the grid; for every
/// other key below 43692 it is `-(offset + 1)`, where `neighbours[offset]` is a count n followed by
/// n point indices: the points in the `nwant` nearest distinct distance shells of the key (squared
/// distance between the values 2l+1), by distance and then index, as ggml's qsort orders them.
/// Built once per grid on first use and kept for the life of the process (like ggml's).
final class IQ2GridSearch: @unchecked Sendable {  // immutable after init
    /// Number of grid points.
    let size: Int
    /// 8 values 2l+1 per point (ggml's `kgrid_q2xs` bytes: 1, 3, 5).
    let grid: UnsafeMutablePointer<Int8>
    /// `keyCount` entries: point index, or -(offset + 1) into `neighbours`.
    let map: UnsafeMutablePointer<Int32>
    let neighbours: UnsafeMutablePointer<UInt16>

    /// ggml's `kmap_size`: every key whose 2-bit fields are at most 2.
    static let keyCount = 43692

    /// `values`: the grid as IQGrids stores it, 8 values per point; its distinct values in
    /// increasing order are the levels 0, 1, 2 (8/25/43 in the 2-bit grids, -1/0/1 in IQ1's, which
    /// reproduces ggml's `kgrid_*` tables exactly). `nwant`: the distance shells kept per off-grid
    /// key, ggml's `nwant` (1 for IQ2_S, 2 for IQ2_XXS/IQ2_XS, 3 for IQ1_S/IQ1_M).
    init<Value: BinaryInteger>(grid values: [Value], nwant: Int) {
        let levelOf = Dictionary(uniqueKeysWithValues: Set(values).sorted().enumerated().map { ($0.element, $0.offset) })
        size = values.count / 8
        grid = .allocate(capacity: 8 * size)
        map = .allocate(capacity: Self.keyCount)
        map.initialize(repeating: -1, count: Self.keyCount)
        for k in 0..<size {
            var key = 0
            for i in 0..<8 {
                let l = levelOf[values[8 * k + i]]!
                grid[8 * k + i] = Int8(2 * l + 1)
                key |= l << (2 * i)
            }
            map[key] = Int32(k)
        }
        // Squared distances split in two halves of 4 coordinates: d2(key, j) = low[key & 255][j] + high[key >> 8][j].
        let halves = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * 256 * size)
        defer { halves.deallocate() }
        for half in 0..<2 {
            for b in 0..<256 {
                let row = halves + (half * 256 + b) * size
                for j in 0..<size {
                    var d2: Int32 = 0
                    for k in 0..<4 {
                        let diff = Int32(grid[8 * j + 4 * half + k]) - Int32(2 * ((b >> (2 * k)) & 3) + 1)
                        d2 += diff * diff
                    }
                    row[j] = d2
                }
            }
        }
        let maxDistance = 8 * 36
        var lists: [UInt16] = []
        var d2 = [Int32](repeating: 0, count: size)
        var histogram = [Int](repeating: 0, count: maxDistance + 1)
        var shells: [Int32] = []
        for key in 0..<Self.keyCount where map[key] < 0 {
            let low = halves + (key & 255) * size, high = halves + (256 + (key >> 8)) * size
            for b in 0...maxDistance { histogram[b] = 0 }
            for j in 0..<size {
                d2[j] = low[j] + high[j]
                histogram[Int(d2[j])] += 1
            }
            shells.removeAll(keepingCapacity: true)
            var count = 0
            for b in 0...maxDistance where histogram[b] > 0 && shells.count < nwant {
                shells.append(Int32(b))
                count += histogram[b]
            }
            map[key] = -Int32(lists.count + 1)
            lists.append(UInt16(count))
            for shell in shells {
                for j in 0..<size where d2[j] == shell { lists.append(UInt16(j)) }
            }
        }
        neighbours = .allocate(capacity: lists.count)
        neighbours.initialize(from: lists, count: lists.count)
    }

    /// ggml `iq2_find_best_neighbour` for the off-grid `key`: among its neighbours, the point
    /// minimizing sum weight[i] * (scale * q[i] - xval[i])² (the first on ties); writes its levels
    /// (0...2) to `L[0..<8]` and returns its index.
    @inline(__always)
    func bestNeighbour(_ key: Int, _ xval: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ scale: Float,
                       _ L: UnsafeMutablePointer<Int8>) -> Int {
        bestGridNeighbour(neighbours + Int(-map[key] - 1), grid: grid, width: 8, xval, weight, scale, L)
    }

    /// The levels of point `index` into `L[0..<8]`.
    @inline(__always)
    func levels(_ index: Int, _ L: UnsafeMutablePointer<Int8>) {
        for i in 0..<8 { L[i] = (grid[8 * index + i] - 1) / 2 }
    }

    static let iq2xxs = IQ2GridSearch(grid: IQGrids.iq2xxs, nwant: 2)
    static let iq2xs = IQ2GridSearch(grid: IQGrids.iq2xs, nwant: 2)
    static let iq2s = IQ2GridSearch(grid: IQGrids.iq2s, nwant: 1)
}
