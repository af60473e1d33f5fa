import QuantaAlgorithms
import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// Recipes, sensitivity and allocation through `quanta` as a user runs it.
final class MixCommandTests: XCTestCase {
    func quanta(_ arguments: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> TestSupport.Run {
        try TestSupport.quanta(arguments, environment: environment, file: file, line: line)
    }

    /// A tensor's measured sensitivity is the mean KLD `quanta eval` gives for a file where that
    /// tensor alone is quantized, on the same chunks; the recipe that wrote the file reads back.
    func testSensitivityEqualsEvalOfTheSingleTensorFile() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = TestSupport.path("Calibration/calib-c4.txt")
        let recipe = folder + "/one.yaml", out = folder + "/one.gguf"
        let recipeText = """
            # quanta recipe (first matching rule wins)
            default: F32
            rules:
              - match: '^blk\\.3\\.ffn_down\\.weight$'
                scheme: Q3_K
            method:
              name: rtn
              damp: 0.01
              act_order: false

            """
        try TestSupport.write(Array(recipeText.utf8), to: recipe)
        var run = try quanta(["quantize", TestSupport.austenModel, out, "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        run = try quanta(["inspect", out])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.split(separator: "\n").contains { $0.contains("blk.3.ffn_down.weight ") && $0.contains(" Q3_K ") }, run.stdout)
        let printed = run.stdout.components(separatedBy: "recipe (quanta.recipe):\n")[1].components(separatedBy: "\n\n")[0]
        XCTAssertEqual(printed.split(separator: "\n").map { String($0.dropFirst(2)) }.joined(separator: "\n") + "\n", recipeText)

        run = try quanta(["eval", out, "--text", text, "--ctx", "64", "--chunks", "3", "--baseline", TestSupport.austenModel, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let eval = try JSONParser.parse(Array(run.stdout.utf8))
        let expected = try XCTUnwrap(eval["drift"]?["mean_kld"]?.doubleValue)
        run = try quanta(["sensitivity", TestSupport.austenModel, "--eval", text, "--ctx", "64", "--chunks", "3", "--candidates", "Q3_K,Q8_0", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let table = try JSONParser.parse(Array(run.stdout.utf8))
        let tensors = try XCTUnwrap(table["tensors"]?.arrayValue)
        XCTAssertEqual(tensors.count, 6 * 7 + 2)
        let down = try XCTUnwrap(tensors.first { $0["name"] == .string("blk.3.ffn_down.weight") })
        let measured = try XCTUnwrap(down["kld"]?["Q3_K"]?.doubleValue)
        XCTAssertEqual(measured, expected, accuracy: expected * 1e-3)
        XCTAssertLessThan(try XCTUnwrap(down["kld"]?["Q8_0"]?.doubleValue), measured / 10)
    }

    /// A type ggml writes only with importance weights is a candidate wherever the importance
    /// matrix has an entry (the decoder's linears), and absent for the others (llama-imatrix
    /// records nothing for token_embd and output).
    func testImportanceOnlyCandidates() throws {
        let run = try quanta(["sensitivity", TestSupport.austenModel, "--imatrix", TestSupport.golden("austen-imatrix.gguf"),
                              "--eval", TestSupport.path("Calibration/calib-c4.txt"), "--ctx", "64", "--chunks", "2",
                              "--candidates", "IQ2_XXS,Q4_K", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let tensors = try XCTUnwrap(JSONParser.parse(Array(run.stdout.utf8))["tensors"]?.arrayValue)
        XCTAssertEqual(tensors.count, 6 * 7 + 2)
        for tensor in tensors {
            let name = try XCTUnwrap(tensor["name"]?.stringValue)
            let low = tensor["kld"]?["IQ2_XXS"]?.doubleValue, k = try XCTUnwrap(tensor["kld"]?["Q4_K"]?.doubleValue, name)
            if name.hasPrefix("blk.") {
                XCTAssertGreaterThan(try XCTUnwrap(low, name), k, "\(name): 2.06 bits drift more than 4.5")
            } else {
                XCTAssertNil(low, name)
            }
        }
    }

    /// The recipe a plain run embeds writes the same file again.
    func testEmbeddedRecipeReproducesThePlainRun() throws {
        let folder = try TestSupport.temporaryFolder()
        let first = folder + "/first.gguf", second = folder + "/second.gguf", recipe = folder + "/recipe.yaml"
        var run = try quanta(["quantize", TestSupport.austenModel, first, "Q4_K_M", "--tensor-type", "attn_q=Q8_0", "--output-tensor-type", "Q5_K"])
        XCTAssertEqual(run.status, 0, run.stderr)
        run = try quanta(["inspect", first, "--json"])
        let metadata = try XCTUnwrap(JSONParser.parse(Array(run.stdout.utf8))["metadata"])
        let text = try XCTUnwrap(metadata["quanta.recipe"]?.stringValue ?? metadata["quanta.recipe"]?["value"]?.stringValue, run.stdout)
        XCTAssertTrue(text.hasPrefix("# quanta recipe (first matching rule wins)\npreset: Q4_K_M\nrules:\n  - match: '^output\\.weight$'\n    scheme: Q5_K\n"), text)
        XCTAssertEqual(text.components(separatedBy: "scheme: Q8_0").count - 1, 6, text)
        try TestSupport.write(Array(text.utf8), to: recipe)
        run = try quanta(["quantize", TestSupport.austenModel, second, "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try FileSystem.read(first), try FileSystem.read(second))
    }

    /// `--target-size` writes a file of at most that many bytes whose types follow the measured
    /// sensitivity, and the allocation's recipe is embedded.
    func testTargetSizeHonoursTheBudget() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = TestSupport.path("Calibration/calib-c4.txt")
        let q4 = folder + "/q4.gguf", mixed = folder + "/mix.gguf"
        var run = try quanta(["quantize", TestSupport.austenModel, q4, "Q4_K", "--pure"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let size = try MappedFile(path: q4).count
        run = try quanta(["quantize", TestSupport.austenModel, mixed, "--target-size", "\(size)", "--eval", text, "--slice-ctx", "64",
                          "--slice-chunks", "2", "--candidates", "Q3_K,Q4_K,Q6_K", "--pin", "output=Q6_K", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let written = try MappedFile(path: mixed).count
        XCTAssertLessThanOrEqual(written, size)
        XCTAssertGreaterThan(written, size - 40_000, "the budget is used")
        let report = try JSONParser.parse(Array(run.stdout.utf8))
        let types = Dictionary(uniqueKeysWithValues: try XCTUnwrap(report["tensors"]?.arrayValue).map { ($0["name"]!.stringValue!, $0["to"]!.stringValue!) })
        XCTAssertEqual(types["output.weight"], "Q6_K")
        let blockTypes = Set(types.filter { $0.key.hasPrefix("blk.") && !$0.key.contains("norm") }.values)
        XCTAssertTrue(blockTypes.isSubset(of: ["Q3_K", "Q4_K", "Q6_K"]) && blockTypes.count >= 2, "\(blockTypes)")
        run = try quanta(["inspect", mixed])
        XCTAssertTrue(run.stdout.contains("    - match: '^output\\.weight$'\n      scheme: Q6_K"), run.stdout)

        run = try quanta(["quantize", TestSupport.austenModel, folder + "/small.gguf", "--target-size", "1000", "--eval", text,
                          "--slice-ctx", "64", "--slice-chunks", "2", "--candidates", "Q3_K"])
        XCTAssertEqual(run.status, 64)
        XCTAssertTrue(run.stderr.contains("allocation: the budget of"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/small.gguf"))
    }

    /// `TYPE+awq` candidates are measured on the model AWQ makes for the type: the head and the
    /// embedding, which AWQ does not rescale, keep the plain type's drift, the linears change. An
    /// allocation among them writes an AWQ recipe (plain types, `method: awq`) that reproduces
    /// the file, and mixing AWQ and plain candidates is refused.
    func testAWQCandidatesAndAWQRecipes() throws {
        let folder = try TestSupport.temporaryFolder()
        let stats = folder + "/stats.h5", mixed = folder + "/mix.gguf", again = folder + "/again.gguf", recipe = folder + "/r.yaml"
        let cache = folder + "/sens.h5"
        var run = try quanta(["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "4",
                              "--seq-len", "64", "--hessian", "diag", "--out", stats])
        XCTAssertEqual(run.status, 0, run.stderr)
        run = try quanta(["sensitivity", TestSupport.austenModel, "--stats", stats, "--ctx", "64", "--chunks", "2", "--candidates", "Q3_K,Q3_K+awq",
                          "--out", cache, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let tensors = try XCTUnwrap(JSONParser.parse(Array(run.stdout.utf8))["tensors"]?.arrayValue)
        var changed = 0
        for tensor in tensors {
            let plain = try XCTUnwrap(tensor["kld"]?["Q3_K"]?.doubleValue), awq = try XCTUnwrap(tensor["kld"]?["Q3_K+awq"]?.doubleValue)
            let name = try XCTUnwrap(tensor["name"]?.stringValue)
            if name == "output.weight" || name == "token_embd.weight" {
                XCTAssertEqual(awq, plain, accuracy: plain * 1e-4, name)
            } else if abs(awq - plain) > plain * 1e-3 {
                changed += 1
            }
        }
        XCTAssertGreaterThan(changed, 10, "AWQ rescales the linears")
        XCTAssertEqual(tensors.count, 44)

        run = try quanta(["quantize", TestSupport.austenModel, mixed, "--target-bpw", "4.5", "--stats", stats, "--slice-ctx", "64", "--slice-chunks", "2",
                          "--candidates", "Q3_K+awq,Q6_K+awq", "--sensitivity", cache])
        XCTAssertEqual(run.status, 0, run.stderr)
        run = try quanta(["inspect", mixed, "--json"])
        let metadata = try XCTUnwrap(JSONParser.parse(Array(run.stdout.utf8))["metadata"])
        let text = try XCTUnwrap(metadata["quanta.recipe"]?.stringValue ?? metadata["quanta.recipe"]?["value"]?.stringValue, run.stdout)
        let parsed = try Recipe.parse(text, file: "embedded")
        XCTAssertEqual(parsed.method, "awq")
        XCTAssertFalse(text.contains("+awq"), text)
        XCTAssertNotNil(metadata["quanta.awq.calibration"], "the AWQ run's own record")
        try TestSupport.write(Array(text.utf8), to: recipe)
        run = try quanta(["quantize", TestSupport.austenModel, again, "--recipe", recipe, "--stats", stats])
        XCTAssertEqual(run.status, 0, run.stderr)
        // The same tensors; only the allocation's prediction (quanta.mix.*) is not in the recipe's file.
        let (a, b) = (try GGUFFile(file: MappedFile(path: mixed)), try GGUFFile(file: MappedFile(path: again)))
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
        XCTAssertEqual(a.tensors.map(\.type), b.tensors.map(\.type))
        XCTAssertTrue(zip(a.tensors, b.tensors).allSatisfy { a.rawBytes($0.0).elementsEqual(b.rawBytes($0.1)) }, "tensor bytes differ")

        run = try quanta(["quantize", TestSupport.austenModel, folder + "/both.gguf", "--target-bpw", "4.5", "--stats", stats, "--slice-ctx", "64",
                          "--slice-chunks", "2", "--candidates", "Q3_K,Q4_K+awq"])
        XCTAssertEqual(run.status, 64)
        XCTAssertEqual(run.stderr, "quanta: error: --candidates: AWQ rescales whole blocks: give only TYPE+awq candidates, or none\n")
    }
}
