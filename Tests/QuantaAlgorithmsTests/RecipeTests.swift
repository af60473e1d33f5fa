import QuantaAlgorithms
import QuantaCore
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
                       "r.yaml:4:13: scheme: unknown scheme 'Q4_KK' (a ggml type Quanta writes such as Q4_K, TYPE+gptq, TYPE+rtn, or skip)")
        XCTAssertEqual(error("default: Q4_K\nrules:\n  - match: 'blk\\.(0'\n    scheme: Q6_K\n"),
                       "r.yaml:3:12: match 'blk\\.(0' is not a valid regular expression")
        XCTAssertEqual(error("default: Q4_K\nrules: [\n  - match: x\n"), "r.yaml:3:3: not valid YAML: did not find expected node content")
        XCTAssertEqual(error("default: Q4_K\nrule: []\n"),
                       "r.yaml:2:1: recipe: unknown key 'rule' (expected preset, default, rules, method, calibration)")
        XCTAssertEqual(error("preset: Q4_K_M\ndefault: Q4_K\n"), "r.yaml:1:1: give preset (llama-quantize's rules) or default (one scheme), one of them")
        XCTAssertEqual(error("default: Q4_K\nmethod: {name: awq}\n"), "r.yaml:2:16: method 'awq' is not available in recipes (rtn, gptq)")
        XCTAssertEqual(error("default: Q4_K\ncalibration: {samples: 3}\n"), "r.yaml:2:14: calibration needs data (a text file)")
        XCTAssertEqual(error(""), "r.yaml: the recipe is empty")
        XCTAssertEqual(error("default: '+'\n"), "r.yaml:1:10: default: unknown scheme '+' (a ggml type Quanta writes such as Q4_K, TYPE+gptq, TYPE+rtn, or skip)")
    }
}

/// Mutated recipes never crash the parser: each parses or fails with a located QuantaError.
final class RecipeFuzzTests: XCTestCase {
    func testMutatedRecipesFailCleanly() {
        let base = Array(RecipeTests.sample.utf8)
        let alphabet = Array("-:'\"[]{}#&*!|>%@`\\ \n\tQ4_K0.9+gptqskipmatch".utf8)
        var rng = SeededGenerator(seed: 2026)
        var parsed = 0, failed = 0
        for _ in 0..<3000 {
            var bytes = base
            for _ in 0..<(1 + rng.below(4)) {
                let i = rng.below(bytes.count)
                switch rng.below(3) {
                case 0: bytes[i] = alphabet[rng.below(alphabet.count)]
                case 1: bytes.remove(at: i)
                default: bytes.insert(alphabet[rng.below(alphabet.count)], at: i)
                }
            }
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
