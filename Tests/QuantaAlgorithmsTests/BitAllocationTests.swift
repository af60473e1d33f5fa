import QuantaAlgorithms
import QuantaCore
import XCTest

final class BitAllocationTests: XCTestCase {
    /// Random items: sizes in 32-byte units (as GGUF's alignment), drifts falling with size but not convexly.
    func randomItems(_ rng: inout SeededGenerator, count: Int) -> [AllocationItem] {
        (0..<count).map { i in
            let n = 2 + rng.below(4)
            let options = (0..<n).map { j in
                AllocationOption(label: "o\(j)", bytes: 32 * (1 + rng.below(40)), drift: Double(rng.below(1000)) / 997)
            }
            return AllocationItem(name: "t\(i)", options: options)
        }
    }

    func bruteForce(_ items: [AllocationItem], budget: Int) -> Double {
        var best = Double.infinity
        func visit(_ i: Int, _ bytes: Int, _ drift: Double) {
            guard bytes <= budget else { return }
            if i == items.count { best = min(best, drift); return }
            for o in items[i].options { visit(i + 1, bytes + o.bytes, drift + o.drift) }
        }
        visit(0, 0, 0)
        return best
    }

    func testEqualsBruteForceAtEveryBudget() throws {
        var rng = SeededGenerator(seed: 7)
        var cases = 0
        for _ in 0..<30 {
            let items = randomItems(&rng, count: 3 + rng.below(4))
            let low = items.reduce(0) { $0 + $1.options.map(\.bytes).min()! }
            let high = items.reduce(0) { $0 + $1.options.map(\.bytes).max()! }
            for budget in stride(from: low, through: high + 64, by: max(32, (high - low) / 7)) {
                let allocation = try BitAllocation.solve(items, budget: budget)
                let chosen = zip(items, allocation.choices).map { $0.options[$1] }
                XCTAssertEqual(allocation.bytes, chosen.reduce(0) { $0 + $1.bytes })
                XCTAssertLessThanOrEqual(allocation.bytes, budget)
                XCTAssertTrue(allocation.exact)
                XCTAssertEqual(allocation.drift, bruteForce(items, budget: budget), accuracy: 1e-9, "budget \(budget)")
                cases += 1
            }
        }
        XCTAssertGreaterThan(cases, 200)
    }

    /// With a tiny cell limit the fill covers part of the items, with coarse sizes: still within
    /// the budget, never worse than the relaxation, and close to the optimum here.
    func testCoreFillStaysWithinBudget() throws {
        var rng = SeededGenerator(seed: 11)
        var gap = 0.0
        for _ in 0..<20 {
            let items = randomItems(&rng, count: 7)
            let low = items.reduce(0) { $0 + $1.options.map(\.bytes).min()! }
            let high = items.reduce(0) { $0 + $1.options.map(\.bytes).max()! }
            let budget = (low + high) / 2
            let exact = try BitAllocation.solve(items, budget: budget)
            let core = try BitAllocation.solve(items, budget: budget, maxCells: 200)
            XCTAssertFalse(core.exact)
            XCTAssertLessThanOrEqual(core.bytes, budget)
            XCTAssertGreaterThanOrEqual(core.drift, exact.drift - 1e-12)
            gap = max(gap, core.drift - exact.drift)
        }
        XCTAssertLessThan(gap, 0.5)
    }

    func testErrors() {
        let items = [AllocationItem(name: "blk.0.attn_q.weight", options: [AllocationOption(label: "Q4_K", bytes: 100, drift: 0.1)])]
        XCTAssertThrowsError(try BitAllocation.solve(items, budget: 99)) { error in
            XCTAssertEqual("\(error)", "allocation: the budget of 99 bytes is below the smallest possible size, 100 bytes")
        }
        let bad = [AllocationItem(name: "x", options: [AllocationOption(label: "Q4_K", bytes: 100, drift: .nan)])]
        XCTAssertThrowsError(try BitAllocation.solve(bad, budget: 200)) { error in
            XCTAssertEqual("\(error)", "allocation item 'x' option Q4_K: needs bytes ≥ 0 and a finite drift ≥ 0 (got 100 bytes, drift nan)")
        }
    }
}
