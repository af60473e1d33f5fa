import QuantaCore
import QuantaEval
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

final class PerplexityTests: XCTestCase {
    static let persuasion = TestSupport.path("Calibration/austen-persuasion-eval.txt")

    /// The bundled model's README protocol (windows of 256 from position 0, no BOS, all 255
    /// predictions scored) on the first 32,768 tokens: reference_forward.py gives 65.9438191.
    func testMatchesNumpyReferenceForward() throws {
        let model = try DecoderModel(path: TestSupport.austenModel)
        let tokens = Array(model.tokenizer.encode(try String(contentsOfFile: PerplexityTests.persuasion, encoding: .utf8)).prefix(32768))
        var nll = 0.0, count = 0
        let vocab = model.config.vocabSize
        let windows = stride(from: 0, to: tokens.count, by: 256).map { Array(tokens[$0..<($0 + 256)]) }
        for batch in stride(from: 0, to: windows.count, by: 16) {
            let group = Array(windows[batch..<min(windows.count, batch + 16)])
            let logits = try model.logits(group)
            for (b, window) in group.enumerated() {
                for t in 0..<255 {
                    let row = (b * 256 + t) * vocab
                    var m = -Double.infinity
                    for j in 0..<vocab { m = max(m, Double(logits[row + j])) }
                    var sum = 0.0
                    for j in 0..<vocab { sum += exp(Double(logits[row + j]) - m) }
                    nll += m + log(sum) - Double(logits[row + Int(window[t + 1])])
                    count += 1
                }
            }
        }
        XCTAssertEqual(count, 32640)
        let ppl = exp(nll / Double(count))
        XCTAssertEqual(ppl, 65.9438191, accuracy: 65.9438191 * 1e-5, "fp32 runtime vs numpy float64 reference")
    }

    /// llama-perplexity on the F32 GGUF: 75.2329 at -c 256 --chunks 40 (BOS on, as that GGUF had it).
    func testLlamaPerplexityProtocolOnBundledModel() throws {
        let model = try DecoderModel(path: TestSupport.austenModel)
        let text = try String(contentsOfFile: PerplexityTests.persuasion, encoding: .utf8)
        let result = try Evaluator(model: model, protocol: PerplexityProtocol(context: 256, chunks: 40, addBOS: true, batch: 8)).run(text: text)
        XCTAssertEqual(result.scoredTokens, 5080)
        XCTAssertEqual(result.chunks, 40)
        XCTAssertEqual(result.perplexity, 75.2329, accuracy: 75.2329 * 0.001)
        XCTAssertEqual(result.perplexityError, 2.91446, accuracy: 0.01)
    }
}
