import QuantaCore

/// The search tables of one IQ3 grid, built as ggml's `iq3xs_init_impl` builds them.
///
/// A point of the 4-dimensional lattice has a level l in 0...7 per coordinate (value 2l + 1 in
/// units of the group scale) and packs into 12 bits, 3 per coordinate, coordinate 0 lowest.
/// IQ3_XXS uses 256 of the 4096 points, IQ3_S 512. The levels come from `IQGrids` (the same
/// points in the same order as ggml's `kgrid_256` / `kgrid_512`, stored dequantized: IQ3_XXS
/// values 4, 12, ..., 52, 62, IQ3_S values 1, 3, ..., 15). For each of the 4096 points the map
/// gives its grid index, or for a point off the grid a list of the grid points at the 2
/// (IQ3_XXS) or 3 (IQ3_S) smallest squared distances, by distance then index.
///
/// The two instances are built on first use and live for the whole process.
final class IQ3Grid: @unchecked Sendable {
    let size: Int
    /// Four odd values 2l + 1 per grid point.
    let points: UnsafeMutablePointer<Int8>
    /// Packed point -> grid index; for a point off the grid -(offset + 1) into `neighbours`.
    let map: UnsafeMutablePointer<Int32>
    /// At each offset: the count n, then n grid indices.
    let neighbours: UnsafeMutablePointer<UInt16>

    static let xxs = IQ3Grid(IQGrids.iq3xxs, level: { (Int($0) - 4) / 8 }, distances: 2)
    static let s = IQ3Grid(IQGrids.iq3s, level: { (Int($0) - 1) / 2 }, distances: 3)

    private init(_ values: [UInt8], level: (UInt8) -> Int, distances: Int) {
        size = values.count / 4
        points = .allocate(capacity: 4 * size)
        for i in 0..<(4 * size) { points[i] = Int8(2 * level(values[i]) + 1) }
        map = .allocate(capacity: 4096)
        map.initialize(repeating: -1, count: 4096)
        for k in 0..<size {
            var u = 0
            for i in 0..<4 { u |= ((Int(points[4 * k + i]) - 1) / 2) << (3 * i) }
            map[u] = Int32(k)
        }
        var list: [UInt16] = []
        var d2 = [Int](repeating: 0, count: size)
        for u in 0..<4096 where map[u] < 0 {
            for j in 0..<size {
                var d = 0
                for k in 0..<4 {
                    let diff = Int(points[4 * j + k]) - (2 * ((u >> (3 * k)) & 7) + 1)
                    d += diff * diff
                }
                d2[j] = d
            }
            // The points at the `distances` smallest distinct distances, in qsort's (d2, j) order.
            map[u] = -Int32(list.count + 1)
            let countAt = list.count
            list.append(0)
            var threshold = -1
            for _ in 0..<distances {
                var next = Int.max
                for d in d2 where d > threshold && d < next { next = d }
                if next == Int.max { break }
                for j in 0..<size where d2[j] == next { list.append(UInt16(j)) }
                threshold = next
            }
            list[countAt] = UInt16(list.count - countAt - 1)
        }
        neighbours = .allocate(capacity: list.count)
        neighbours.initialize(from: list, count: list.count)
    }

    /// The grid index of the four levels at `L` (0...7 each); the point must be on the grid.
    @inline(__always)
    func index(_ L: UnsafePointer<Int8>) -> Int {
        var u = 0
        for i in 0..<4 { u |= Int(L[i]) << (3 * i) }
        let g = Int(map[u])
        precondition(g >= 0, "IQ3: point \(u) is not on the grid")
        return g
    }

    /// ggml `iq3_find_best_neighbour`: among the neighbours of the off-grid point `u`, the grid
    /// point nearest to `xval` (weighted squared error of scale * value; first one on ties).
    /// Writes its levels to `L[0..<4]` and returns its index.
    @inline(__always)
    func bestNeighbour(_ u: Int, _ xval: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ scale: Float,
                       _ L: UnsafeMutablePointer<Int8>) -> Int {
        bestGridNeighbour(neighbours + Int(-map[u] - 1), grid: points, width: 4, xval, weight, scale, L)
    }
}
