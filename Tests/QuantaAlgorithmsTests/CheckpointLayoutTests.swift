import QuantaAlgorithms
import QuantaCore
import QuantaIO
import XCTest

/// What each checkpoint layout stores for one linear, as the allocation counts it, and the
/// patterns a mixed GPTQ folder writes for fused layers.
final class CheckpointLayoutTests: XCTestCase {
    /// `storedTensors` (what budgets count) names exactly the tensors `entries` writes, with
    /// their dtypes, shapes and bytes, for every layout and grid it accepts.
    func testStoredTensorsMatchTheEntries() throws {
        let (rows, columns) = (64, 256)
        var rng = SeededGenerator(seed: 7)
        let weights = (0..<(rows * columns)).map { _ in Float(rng.below(2001)) / 1000 - 1 }
        var checked = 0
        for layout in CheckpointLayouts.all {
            for text in ["w2g128", "w3g128", "w4g128", "w4g64:asym", "w5g64", "w6g32", "w8g128", "w8g-1", "w4g-1:asym"] {
                let grid = try XCTUnwrap(GridScheme(text))
                guard (try? layout.check(grid.options, actOrder: false)) != nil,
                      let stored = layout.storedTensors(prefix: "m", rows: rows, columns: columns, grid: grid) else { continue }
                let layer = try GPTQCheckpoint.solvedLinear(weights, rows: rows, columns: columns, grid: grid.options)
                let entries = try layout.entries(prefix: "m", layer, bits: grid.bits)
                XCTAssertEqual(entries.map(\.name), stored.map(\.name), "\(layout.name) \(text)")
                XCTAssertEqual(entries.map(\.dtype), stored.map(\.dtype), "\(layout.name) \(text)")
                XCTAssertEqual(entries.map(\.shape), stored.map(\.shape), "\(layout.name) \(text)")
                XCTAssertEqual(layout.byteCount(rows: rows, columns: columns, grid: grid), entries.reduce(0) { $0 + $1.byteCount })
                checked += 1
            }
        }
        XCTAssertEqual(checked, 7 + 7 + 2 + 5, "gptq: 2, 3, 4, 8 bits; mlx: groups of 32-128; awq: 4 bits in groups; compressed-tensors: 4 and 8 bits")
        XCTAssertNil(MLXFolderLayout().byteCount(rows: 64, columns: 96, grid: GridScheme(bits: 4, groupSize: 64)), "groups must divide the columns")
        XCTAssertNil(GPTQFolderLayout().byteCount(rows: 64, columns: 256, grid: GridScheme(bits: 5, groupSize: 128)))
        XCTAssertEqual(GPTQFolderLayout().byteCount(rows: 64, columns: 256, grid: GridScheme(bits: 4, groupSize: 128)),
                       64 * 256 / 2 + 2 * 64 / 2 + 2 * 64 * 2 + 256 * 4)
    }

    func testFusedLayersShareOnePattern() {
        XCTAssertEqual(FusedLinears.pattern("model.layers.0.self_attn.k_proj"), #"^model\.layers\.0\.self_attn\.(q_proj|k_proj|v_proj|qkv_proj)$"#)
        XCTAssertEqual(FusedLinears.pattern("model.layers.11.mlp.up_proj"), #"^model\.layers\.11\.mlp\.(gate_proj|up_proj|gate_up_proj)$"#)
        XCTAssertEqual(FusedLinears.pattern("model.layers.2.self_attn.o_proj"), #"^model\.layers\.2\.self_attn\.o_proj$"#)
        XCTAssertNil(FusedLinears.set(of: "model.layers.2.mlp.down_proj"))
    }
}
