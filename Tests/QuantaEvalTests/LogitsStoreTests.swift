import QuantaCore
import QuantaEval
import QuantaModel
import TestSupport
import XCTest

final class LogitsStoreTests: XCTestCase {
    /// Top-K baselines give a KLD that never exceeds the full one and comes close to it, and
    /// the exact baseline perplexity, Δp and same-top rate; a baseline from other tokens is refused.
    func testTopKBaselineBoundsTheFullKLD() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = try String(contentsOfFile: TestSupport.path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8)
        let base = try DecoderModel(path: TestSupport.austenModel)
        let settings = PerplexityProtocol(context: 128, chunks: 6, addBOS: true, batch: 3)
        let evaluator = Evaluator(model: base, protocol: settings)
        let full = try evaluator.run(text: text, saveLogits: LogitsSink(path: folder + "/full.h5"))
        _ = try evaluator.run(text: text, saveLogits: LogitsSink(path: folder + "/top.h5", topK: 32))

        // A perturbed model: every weight of layer 0's down projection scaled by 1.05.
        let other = try DecoderModel(path: TestSupport.austenModel)
        other.weights.layers[0].down = other.weights.layers[0].down.map { $0 * 1.05 }
        let subject = Evaluator(model: other, protocol: settings)
        let live = try subject.run(text: text, baseline: .model(base))
        let exact = try subject.run(text: text, baseline: .logits(BaselineLogits(path: folder + "/full.h5")))
        let topK = try subject.run(text: text, baseline: .logits(BaselineLogits(path: folder + "/top.h5")))
        let d = try XCTUnwrap(live.drift), e = try XCTUnwrap(exact.drift), t = try XCTUnwrap(topK.drift)
        XCTAssertGreaterThan(d.meanKLD, 1e-5)
        XCTAssertEqual(e.meanKLD, d.meanKLD, accuracy: d.meanKLD * 1e-4)
        XCTAssertEqual(e.baselinePerplexity, full.perplexity, accuracy: full.perplexity * 1e-6)
        XCTAssertLessThanOrEqual(t.meanKLD, e.meanKLD * (1 + 1e-6), "top-K KLD is a lower bound")
        XCTAssertGreaterThan(t.meanKLD, e.meanKLD * 0.5)
        XCTAssertEqual(t.sameTopPercent, e.sameTopPercent, accuracy: 1e-9)
        // The target's own log-probability is stored: everything but the KLD is exact with any K.
        XCTAssertEqual(t.baselinePerplexity, full.perplexity, accuracy: full.perplexity * 1e-6)
        XCTAssertEqual(t.rmsDeltaPPercent, e.rmsDeltaPPercent, accuracy: e.rmsDeltaPPercent * 1e-5)
        XCTAssertEqual(t.perplexityRatio, e.perplexityRatio, accuracy: 1e-7)
        XCTAssertEqual(t.correlation, e.correlation, accuracy: 1e-7)

        let shifted = Evaluator(model: base, protocol: PerplexityProtocol(context: 128, chunks: 6, addBOS: false, batch: 3))
        XCTAssertThrowsError(try shifted.run(text: text, baseline: .logits(BaselineLogits(path: folder + "/full.h5")))) { error in
            XCTAssertEqual("\(error)", "\(folder)/full.h5: baseline used --ctx 128 and BOS on; this run uses --ctx 128 and BOS off")
        }
    }
}
