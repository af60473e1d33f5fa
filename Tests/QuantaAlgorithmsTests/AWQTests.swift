@testable import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaModel
import TestSupport
import XCTest

/// AWQ's scales fold exactly, and its search lowers the error it measures.
final class AWQTests: XCTestCase {
    func sequences(_ count: Int, _ length: Int) throws -> [[Int32]] {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let tokenizer = try source.tokenizer()
        return try CalibrationSampler.randomWindows(samples: count, length: length, seed: 1)
            .sequences(CalibrationData(path: TestSupport.path("Calibration/calib-wiki.txt")), tokenizer: tokenizer, bos: nil)
    }

    /// With clipping off, the rescaled but unrounded model (norms / s, linears * s, v rows / s and
    /// o's columns * s under GQA) gives the original logits within 1e-4 relative; every block's
    /// search finds a loss no larger than alpha 0's, and the scales are not all one.
    func testFoldingIsExact() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        var options = AWQOptions()
        options.clip = false
        options.searchSequences = 4
        options.scaleGrid = 5
        var folded = try DecoderWeights.load(from: source) { _ in true }
        var changed = 0
        try SequentialAWQ.run(source: source, sequences: try sequences(8, 64), options: options, threads: 2, onBlock: { l, weights, report in
            for pair in AWQPair.allCases {
                let loss = try XCTUnwrap(report.loss[pair], "\(pair)")
                XCTAssertLessThanOrEqual(loss.best, loss.plain, "block \(l) \(pair)")
            }
            if weights.attentionNorm != folded.layers[l].attentionNorm { changed += 1 }
            folded.layers[l] = weights
        })
        XCTAssertGreaterThan(changed, 0, "some block was rescaled")
        let original = try DecoderModel(path: TestSupport.austenModel)
        let tokens = try sequences(2, 96)
        let reference = try original.logits(tokens)
        original.weights = try DecoderWeights.load(from: source) { _ in true }
        original.weights.layers = folded.layers
        let logits = try original.logits(tokens)
        var worst: Float = 0, scale: Float = 0
        for i in reference.indices {
            worst = max(worst, abs(logits[i] - reference[i]))
            scale = max(scale, abs(reference[i]))
        }
        XCTAssertLessThan(worst / scale, 1e-4, "largest difference relative to the largest logit")
    }
}
