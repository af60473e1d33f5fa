import QuantaAlgorithms
import QuantaCore
import TestSupport
import XCTest

final class RecipeTests: XCTestCase {
    let text = RecipeTests.sample

    static let sample = """
        preset: Q4_K_M
        rules:
          - match: 'blk\\.[0-2]\\.ffn_down'
            scheme: Q6_K
          - match: 'ffn_down'
            scheme: Q4_K+gptq
          - match: '^output\\.weight$'
            scheme: skip
        method: {name: gptq, damp: 0.02, act_order: true}
        calibration:
          data: Calibration/calib-wiki.txt
          samples: 64
          seq_len: 256
          seed: 3

        """

    func testParseFirstMatchWinsAndRoundTrip() throws {
        let recipe = try Recipe.parse(text, file: "r.yaml")
        XCTAssertEqual(recipe.preset, "Q4_K_M")
        XCTAssertEqual(recipe.rules.count, 3)
        XCTAssertEqual(recipe.scheme(for: "blk.1.ffn_down.weight"), .type(.q6_K, method: nil))
        XCTAssertEqual(recipe.scheme(for: "blk.4.ffn_down.weight"), .type(.q4_K, method: "gptq"))
        XCTAssertEqual(recipe.scheme(for: "output.weight"), .skip)
        XCTAssertNil(recipe.scheme(for: "blk.0.attn_q.weight"))
        XCTAssertEqual(recipe.method, "gptq")
        XCTAssertEqual(recipe.damp, 0.02)
        XCTAssertTrue(recipe.actOrder)
        XCTAssertEqual(recipe.calibration?.samples, 64)
        XCTAssertEqual(recipe.calibration?.sequenceLength, 256)
        XCTAssertEqual(recipe.calibration?.seed, 3)
        let again = try Recipe.parse(recipe.yaml, file: "resolved")
        XCTAssertEqual(again, recipe)
        XCTAssertEqual(again.yaml, recipe.yaml)
    }

    func error(_ yaml: String) -> String {
        do {
            _ = try Recipe.parse(yaml, file: "r.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testErrorsNameLineAndColumn() {
        XCTAssertEqual(error("default: Q4_K\nrules:\n  - match: 'attn'\n    scheme: Q4_KK\n"),
                       "r.yaml:4:13: scheme: unknown scheme 'Q4_KK' (a ggml type Quanta writes such as Q4_K, a grid such as w4g128 or w3g64:asym, either with +gptq or +rtn, or skip)")
        XCTAssertEqual(error("default: Q4_K\nrules:\n  - match: 'blk\\.(0'\n    scheme: Q6_K\n"),
                       "r.yaml:3:12: match 'blk\\.(0' is not a valid regular expression")
        XCTAssertEqual(error("default: Q4_K\nrules: [\n  - match: x\n"), "r.yaml:3:3: not valid YAML: did not find expected node content")
        XCTAssertEqual(error("default: Q4_K\nrule: []\n"),
                       "r.yaml:2:1: recipe: unknown key 'rule' (expected format, preset, default, rules, method, calibration)")
        XCTAssertEqual(error("preset: Q4_K_M\ndefault: Q4_K\n"), "r.yaml:1:1: give preset (llama-quantize's rules) or default (one scheme), one of them")
        XCTAssertEqual(error("default: Q4_K\nmethod: {name: smoothquant}\n"), "r.yaml:2:16: method 'smoothquant' is not available in recipes (rtn, gptq, awq)")
        XCTAssertEqual(error("default: Q4_K+gptq\nmethod: {name: awq}\n"), "r.yaml:2:9: an AWQ recipe rounds every tensor; Q4_K+gptq asks for GPTQ")
        XCTAssertEqual(error("format: mlx\ndefault: w4g64\nmethod: {name: awq}\n"), "r.yaml:3:9: AWQ recipes write GGUF (a mlx folder takes rtn or gptq)")
        XCTAssertEqual(error("default: Q4_K\ncalibration: {samples: 3}\n"), "r.yaml:2:14: calibration needs data (a text file)")
        XCTAssertEqual(error(""), "r.yaml: the recipe is empty")
        XCTAssertEqual(error("default: '+'\n"), "r.yaml:1:10: default: unknown scheme '+' (a ggml type Quanta writes such as Q4_K, a grid such as w4g128 or w3g64:asym, either with +gptq or +rtn, or skip)")
    }
}

/// Checkpoint recipes: a layout, integer grids, and the checks that keep grids out of GGUF recipes and types out of folders.
final class GridRecipeTests: XCTestCase {
    static let sample = """
        # quanta recipe (first matching rule wins)
        format: gptq
        default: w4g128
        rules:
          - match: 'ffn_down'
            scheme: w8g128+gptq
          - match: 'blk\\.0\\.attn_[qkv]'
            scheme: w3g64:asym
          - match: 'attn_output'
            scheme: skip
        method:
          name: gptq
          damp: 0.01
          act_order: false
          static_groups: true

        """

    func testGridRecipeRoundTrips() throws {
        let recipe = try Recipe.parse(Self.sample, file: "g.yaml")
        XCTAssertEqual(recipe.format, "gptq")
        XCTAssertEqual(recipe.defaultScheme, .grid(GridScheme(bits: 4, groupSize: 128), method: nil))
        XCTAssertEqual(recipe.scheme(for: "blk.3.ffn_down.weight"), .grid(GridScheme(bits: 8, groupSize: 128), method: "gptq"))
        XCTAssertEqual(recipe.scheme(for: "blk.0.attn_k.weight"), .grid(GridScheme(bits: 3, groupSize: 64, symmetric: false), method: nil))
        XCTAssertEqual(recipe.scheme(for: "blk.2.attn_output.weight"), .skip)
        XCTAssertTrue(recipe.staticGroups)
        XCTAssertFalse(recipe.mse)
        XCTAssertEqual(recipe.yaml, Self.sample)
        XCTAssertEqual(try Recipe.parse(recipe.yaml, file: "again"), recipe)
    }

    func testGridsAndTypesStayInTheirFormats() {
        func error(_ yaml: String) -> String {
            do { _ = try Recipe.parse(yaml, file: "g.yaml"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("default: w4g128\n"), "g.yaml:1:10: w4g128 is an integer grid: add format: gptq, mlx or compressed-tensors")
        XCTAssertEqual(error("format: mlx\ndefault: w4g64\nrules:\n  - match: x\n    scheme: Q4_K\n"),
                       "g.yaml:5:13: Q4_K is a GGUF type; a mlx recipe takes grids such as w4g128")
        XCTAssertEqual(error("format: gptq\npreset: Q4_K_M\n"), "g.yaml:2:9: a gptq recipe takes default: wBITSgGROUP, not a preset")
        XCTAssertEqual(error("format: awq\ndefault: w4g128\n"), "g.yaml:1:9: unknown format 'awq' (gguf, gptq, mlx, compressed-tensors)")
        XCTAssertEqual(error("format: gptq\ndefault: w9g128\n"),
                       "g.yaml:2:10: default: unknown scheme 'w9g128' (a ggml type Quanta writes such as Q4_K, a grid such as w4g128 or w3g64:asym, either with +gptq or +rtn, or skip)")
        XCTAssertEqual(error("format: gptq\ndefault: skip\n"), "g.yaml:2:10: the default scheme cannot be skip")
    }

    /// Found by the recipe fuzzer: a pattern the YAML writer cannot put in single quotes (here a
    /// multi-line single-quoted pattern; also line breaks, control characters, BOMs) is written
    /// double-quoted with escapes, and reads back as the same recipe.
    func testPatternsWithAnyCharacterRoundTrip() throws {
        let bytes = try TestSupport.read(TestSupport.path("Fuzz/Regressions/recipe/multiline-quoted-pattern.yaml"))
        let recipe = try Recipe.parse(String(decoding: bytes, as: UTF8.self), file: "fuzzed.yaml")
        XCTAssertEqual(try Recipe.parse(recipe.yaml, file: "written.yaml"), recipe, recipe.yaml)
        // Patterns in YAML's double-quoted escapes: line breaks, a tab, edge spaces, quotes, a
        // backslash, NEL, LINE SEPARATOR, a BOM, BEL, and characters beyond ASCII.
        for pattern in [#"a\nb"#, #"tab\there"#, #" lead"#, #"trail "#, #"q'uote\"s"#, #"back\\slash"#, #"\x85"#, #"\u2028"#,
                        #"\uFEFFx"#, #"\a"#, #"é€😀"#] {
            let text = "default: Q4_K\nrules:\n  - match: \"\(pattern)\"\n    scheme: Q6_K\n"
            let parsed = try Recipe.parse(text, file: "p.yaml")
            XCTAssertEqual(try Recipe.parse(parsed.yaml, file: "written.yaml"), parsed, parsed.yaml)
        }
        XCTAssertTrue(try Recipe.parse("default: Q4_K\nrules:\n  - match: 'blk\\.0'\n    scheme: Q6_K\n", file: "s.yaml").yaml.contains("  - match: 'blk\\.0'"),
                      "plain patterns stay single-quoted, backslashes as they are")
    }

    func testGridSchemeNames() {
        XCTAssertEqual(GridScheme("w4g128"), GridScheme(bits: 4, groupSize: 128))
        XCTAssertEqual(GridScheme("w3g-1:asym"), GridScheme(bits: 3, groupSize: -1, symmetric: false))
        XCTAssertEqual(GridScheme("w8g32:sym")?.description, "w8g32")
        for bad in ["w4", "w1g128", "w9g128", "w4g0", "w4g-2", "w4g128:x", "w4g128:asym:sym", "x4g128", "wg128", ""] {
            XCTAssertNil(GridScheme(bad), bad)
        }
        XCTAssertEqual(RecipeScheme("w4g128:asym+gptq"), .grid(GridScheme(bits: 4, groupSize: 128, symmetric: false), method: "gptq"))
        XCTAssertNil(RecipeScheme("w4g128+awq"))
    }
}

/// Mutated recipes never crash the parser: each parses or fails with a located QuantaError.
final class RecipeFuzzTests: XCTestCase {
    func testMutatedRecipesFailCleanly() {
        let bases = [Array(RecipeTests.sample.utf8), Array(GridRecipeTests.sample.utf8)]
        let alphabet = Array("-:'\"[]{}#&*!|>%@`\\ \n\tQ4_K0.9+gptqskipmatchwg-1asym".utf8)
        var rng = SeededGenerator(seed: 2026)
        var parsed = 0, failed = 0
        for round in 0..<3000 {
            let bytes = TestSupport.mutated(bases[round % 2], alphabet: alphabet, edits: 4, rng: &rng)
            do {
                _ = try Recipe.parse(String(decoding: bytes, as: UTF8.self), file: "f.yaml")
                parsed += 1
            } catch let error as QuantaError {
                XCTAssertTrue(error.description.hasPrefix("f.yaml"), error.description)
                failed += 1
            } catch {
                XCTFail("not a QuantaError: \(error)")
            }
        }
        XCTAssertGreaterThan(parsed, 100)
        XCTAssertGreaterThan(failed, 100)
    }
}
