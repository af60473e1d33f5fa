#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantaCore

/// One way to store an allocation item: its size and the drift it is predicted to cause.
public struct AllocationOption: Sendable, Equatable {
    /// What the option is (a candidate scheme's name).
    public let label: String
    /// Bytes the item takes in the file with this option (padding included).
    public let bytes: Int
    /// Predicted drift (mean KLD) when this item alone is stored this way; ≥ 0.
    public let drift: Double

    public init(label: String, bytes: Int, drift: Double) {
        self.label = label
        self.bytes = bytes
        self.drift = drift
    }
}

/// A tensor, or a group of tensors that must share one option, with the options it may take.
public struct AllocationItem: Sendable, Equatable {
    public let name: String
    public let options: [AllocationOption]

    public init(name: String, options: [AllocationOption]) {
        self.name = name
        self.options = options
    }
}

/// The chosen option of every item.
public struct Allocation: Sendable, Equatable {
    /// Index into each item's `options`.
    public let choices: [Int]
    public let bytes: Int
    /// Sum of the chosen options' drifts.
    public let drift: Double
    /// True when the fill was an exact knapsack over every item (the optimum); false when it
    /// covered only the items near the Lagrangian's critical slope.
    public let exact: Bool
}

/// Chooses one option per item minimizing the summed drift within a byte budget: the
/// multiple-choice knapsack. Dominated options are dropped; the Lagrangian relaxation (each
/// item's lower convex hull of (bytes, drift), filled by decreasing drift saved per byte) gives a
/// starting point, and an exact dynamic program over the budget (in units of the greatest common
/// divisor of the sizes) finishes: over all items when `items × units ≤ maxCells`, otherwise over
/// the items whose hull steps lie nearest the critical slope, the others fixed at the relaxation's
/// choice. Ties go to the smaller option index, so the result does not depend on thread count.
public enum BitAllocation {
    /// Throws when an item has no options, an option has negative bytes or a non-finite or
    /// negative drift, or the budget is below the smallest choice of every item.
    public static func solve(_ items: [AllocationItem], budget: Int, maxCells: Int = 40_000_000) throws -> Allocation {
        for item in items {
            guard item.options.count <= 255 else { throw QuantaError(.invalidArgument, "allocation item '\(item.name)'", "has more than 255 candidates") }
            guard !item.options.isEmpty else { throw QuantaError(.invalidArgument, "allocation item '\(item.name)'", "has no candidate") }
            for o in item.options where o.bytes < 0 || !o.drift.isFinite || o.drift < 0 {
                throw QuantaError(.invalidArgument, "allocation item '\(item.name)' option \(o.label)",
                                  "needs bytes ≥ 0 and a finite drift ≥ 0 (got \(o.bytes) bytes, drift \(o.drift))")
            }
        }
        let minimum = items.reduce(0) { $0 + $1.options.map(\.bytes).min()! }
        guard budget >= minimum else {
            throw QuantaError(.invalidArgument, "allocation", "the budget of \(budget) bytes is below the smallest possible size, \(minimum) bytes")
        }
        let pareto = items.map(frontier)
        let relaxed = lagrangian(pareto, budget: budget)
        let unit = max(1, pareto.flatMap { $0.map(\.bytes) }.reduce(0, gcd))
        if items.count * (budget / unit + 1) <= maxCells {
            let choices = knapsack(pareto, core: Array(pareto.indices), fixedBytes: 0, budget: budget, unit: unit)
            return result(items, pareto, choices, exact: true)
        }
        // Core: the items whose next hull step up or down has the slope nearest the critical one;
        // the others keep the relaxation's choice. Sizes are rounded up to fit `maxCells`, which
        // keeps the result within the budget.
        let distance = pareto.indices.map { i -> Double in
            let h = relaxed.hull[i], k = relaxed.position[i]
            var best = Double.infinity
            if k + 1 < h.count { best = min(best, abs(log(max(slope(pareto[i][h[k]], pareto[i][h[k + 1]]), .leastNormalMagnitude) / relaxed.lambda))) }
            if k > 0 { best = min(best, abs(log(max(slope(pareto[i][h[k - 1]], pareto[i][h[k]]), .leastNormalMagnitude) / relaxed.lambda))) }
            return best
        }
        let order = pareto.indices.sorted { distance[$0] != distance[$1] ? distance[$0] < distance[$1] : $0 < $1 }
        let core = Array(order.prefix(coreSize)).sorted()
        let fixed = pareto.indices.filter { !core.contains($0) }.reduce(0) { $0 + pareto[$1][relaxed.choices[$1]].bytes }
        let perItem = max(2, maxCells / max(core.count, 1))
        let coreUnit = max(unit, (budget - fixed + perItem - 2) / (perItem - 1))
        var choices = relaxed.choices
        for (i, c) in zip(core, knapsack(pareto, core: core, fixedBytes: fixed, budget: budget, unit: coreUnit)) { choices[i] = c }
        let filled = result(items, pareto, choices, exact: false)
        let plain = result(items, pareto, relaxed.choices, exact: false)
        return filled.drift <= plain.drift ? filled : plain
    }

    /// Items the inexact fill re-solves exactly.
    public static let coreSize = 48

    /// An item's non-dominated options, by increasing bytes (and strictly decreasing drift).
    static func frontier(_ item: AllocationItem) -> [Option] {
        let sorted = item.options.enumerated().map { Option(index: $0.offset, bytes: $0.element.bytes, drift: $0.element.drift) }
            .sorted { ($0.bytes, $0.drift, $0.index) < ($1.bytes, $1.drift, $1.index) }
        var kept: [Option] = []
        for o in sorted where kept.last.map({ o.drift < $0.drift && o.bytes > $0.bytes }) ?? true { kept.append(o) }
        return kept
    }

    struct Option {
        let index: Int
        let bytes: Int
        let drift: Double
    }

    /// Drift saved per byte from `a` to the larger `b`.
    static func slope(_ a: Option, _ b: Option) -> Double { (a.drift - b.drift) / Double(b.bytes - a.bytes) }

    struct Relaxation {
        /// Per item: indices into its frontier forming the lower convex hull.
        var hull: [[Int]]
        /// Per item: position on the hull reached.
        var position: [Int]
        /// Per item: frontier index chosen.
        var choices: [Int]
        /// The slope of the last step taken (or of the first refused).
        var lambda: Double
    }

    /// The Lagrangian relaxation: every item starts at its smallest option; hull steps are taken
    /// by decreasing drift saved per byte while they fit.
    static func lagrangian(_ pareto: [[Option]], budget: Int) -> Relaxation {
        let hulls = pareto.map { options -> [Int] in
            var hull: [Int] = []
            for j in options.indices {
                while hull.count >= 2, slope(options[hull[hull.count - 2]], options[hull[hull.count - 1]]) <= slope(options[hull[hull.count - 1]], options[j]) {
                    hull.removeLast()
                }
                hull.append(j)
            }
            return hull
        }
        var steps: [(slope: Double, item: Int, to: Int)] = []
        for (i, hull) in hulls.enumerated() where hull.count > 1 {
            for k in 1..<hull.count { steps.append((slope(pareto[i][hull[k - 1]], pareto[i][hull[k]]), i, k)) }
        }
        // Along a convex hull the slopes decrease, so sorting keeps each item's steps in order.
        steps.sort { $0.slope != $1.slope ? $0.slope > $1.slope : ($0.item, $0.to) < ($1.item, $1.to) }
        var position = [Int](repeating: 0, count: pareto.count)
        var used = pareto.reduce(0) { $0 + $1[0].bytes }
        var lambda = steps.first?.slope ?? 1
        for step in steps where position[step.item] == step.to - 1 {
            let hull = hulls[step.item]
            let extra = pareto[step.item][hull[step.to]].bytes - pareto[step.item][hull[step.to - 1]].bytes
            lambda = step.slope
            guard used + extra <= budget else { break }
            used += extra
            position[step.item] = step.to
        }
        return Relaxation(hull: hulls, position: position, choices: pareto.indices.map { hulls[$0][position[$0]] },
                          lambda: lambda > 0 ? lambda : .leastNormalMagnitude)
    }

    /// Exact multiple-choice knapsack over the `core` items (frontier indices returned in `core`'s
    /// order), with sizes rounded up to `unit` bytes, the other items taking `fixedBytes`.
    static func knapsack(_ pareto: [[Option]], core: [Int], fixedBytes: Int, budget: Int, unit: Int) -> [Int] {
        let capacity = (budget - fixedBytes) / unit
        let width = capacity + 1
        var best = [Double](repeating: .infinity, count: width)
        best[0] = 0
        var choice = [UInt8](repeating: 0, count: core.count * width)
        var next = best
        for (n, i) in core.enumerated() {
            let sizes = pareto[i].map { ($0.bytes + unit - 1) / unit }
            for u in 0..<width {
                var value = Double.infinity, pick = 0
                for (j, o) in pareto[i].enumerated() where sizes[j] <= u {
                    let v = best[u - sizes[j]] + o.drift
                    if v < value { (value, pick) = (v, j) }
                }
                next[u] = value
                choice[n * width + u] = UInt8(truncatingIfNeeded: pick)
            }
            swap(&best, &next)
        }
        var u = (0..<width).min { best[$0] != best[$1] ? best[$0] < best[$1] : $0 < $1 }!
        var picks = [Int](repeating: 0, count: core.count)
        for n in stride(from: core.count - 1, through: 0, by: -1) {
            let j = Int(choice[n * width + u])
            picks[n] = j
            u -= (pareto[core[n]][j].bytes + unit - 1) / unit
        }
        return picks
    }

    static func result(_ items: [AllocationItem], _ pareto: [[Option]], _ frontierChoices: [Int], exact: Bool) -> Allocation {
        let options = frontierChoices.enumerated().map { pareto[$0.offset][$0.element] }
        return Allocation(choices: options.map(\.index), bytes: options.reduce(0) { $0 + $1.bytes },
                          drift: options.reduce(0) { $0 + $1.drift }, exact: exact)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
