import QuantaCore

/// An integer grid for the checkpoint layouts, as recipes, candidates and `quanta compare` name
/// it: `w4g128` (4 bits, groups of 128 input columns, symmetric as GPTQModel's default),
/// `w3g64:asym` (zero points per group), `w8g-1` (one group per output row).
public struct GridScheme: Sendable, Hashable, CustomStringConvertible {
    public let bits: Int
    /// Input columns per group; -1: one group per row.
    public let groupSize: Int
    public let symmetric: Bool

    public init(bits: Int, groupSize: Int, symmetric: Bool = true) {
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
    }

    /// The grid of quantizer options (their static-groups and clipping settings aside).
    public init(_ options: AffineQuantizer.Options) {
        self.init(bits: options.bits, groupSize: options.groupSize, symmetric: options.symmetric)
    }

    /// Parses `wBITSgGROUP` with an optional `:sym` or `:asym`; nil when the text is not one
    /// (bits outside 2...8, a group size neither positive nor -1).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, let grid = parts.first, grid.hasPrefix("w"), let g = grid.firstIndex(of: "g"),
              let bits = Int(grid[grid.index(after: grid.startIndex)..<g]), let group = Int(grid[grid.index(after: g)...]),
              (2...8).contains(bits), group == -1 || (1...(1 << 20)).contains(group) else { return nil }
        var symmetric = true
        if parts.count == 2 {
            switch parts[1] {
            case "sym": symmetric = true
            case "asym": symmetric = false
            default: return nil
            }
        }
        self.init(bits: bits, groupSize: group, symmetric: symmetric)
    }

    public var description: String { "w\(bits)g\(groupSize)" + (symmetric ? "" : ":asym") }

    /// The quantizer's options for this grid (no static groups, no clipping search).
    public var options: AffineQuantizer.Options {
        var options = AffineQuantizer.Options()
        options.bits = bits
        options.groupSize = groupSize
        options.symmetric = symmetric
        return options
    }

    /// Groups of a weight with `columns` input columns.
    public func groups(columns: Int) -> Int { groupSize > 0 ? (columns + groupSize - 1) / groupSize : 1 }
}
