/// Drift of a model against a baseline over the scored tokens, as llama-perplexity
/// `--kl-divergence` reports it.
public struct DriftStatistics: Sendable {
    public let tokens: Int
    public let baselinePerplexity: Double
    public let meanKLD: Double
    public let meanKLDError: Double
    public let medianKLD: Double
    public let p99KLD: Double
    public let maxKLD: Double
    /// Percentage of positions whose most likely token is the same.
    public let sameTopPercent: Double
    /// Root mean square of the change in the correct token's probability, in percent.
    public let rmsDeltaPPercent: Double
    public let deltaPerplexity: Double
    public let perplexityRatio: Double
    /// Correlation of the two models' per-token log-likelihoods.
    public let correlation: Double
}

/// One outcome's term of KL(base || ours) from the two log-probabilities.
@inline(__always)
func klTerm(base t: Double, ours o: Double) -> Double { exp(t) * (t - o) }

/// Compares two full log-probability distributions at one position: KL(base || ours), the
/// base's log-probability of `target`, and whether the most likely tokens (first maximum) agree.
func compareDistributions(base: UnsafeBufferPointer<Double>, ours: UnsafeBufferPointer<Double>,
                          target: Int) -> (kld: Double, baseTarget: Double, sameTop: Bool) {
    var kld = 0.0, argOurs = 0, argBase = 0
    for i in 0..<base.count {
        kld += klTerm(base: base[i], ours: ours[i])
        if ours[i] > ours[argOurs] { argOurs = i }
        if base[i] > base[argBase] { argBase = i }
    }
    return (kld, base[target], argOurs == argBase)
}

/// Accumulates per-token drift; `statistics(perplexity:)` summarizes.
struct DriftAccumulator {
    var kld: [Double] = []
    var sameTop = 0
    var deltaP2 = 0.0
    var baseNLL: [Double] = []
    var nll: [Double] = []

    /// llama.cpp's interpolated percentile over sorted values.
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        if fraction <= 0 { return sorted[0] }
        if fraction >= 1 { return sorted[sorted.count - 1] }
        let p = fraction * Double(sorted.count - 1)
        let i = Int(p)
        let frac = p - Double(i)
        return (1 - frac) * sorted[i] + frac * sorted[min(i + 1, sorted.count - 1)]
    }

    func statistics(perplexity: Double) -> DriftStatistics {
        let n = Double(kld.count)
        let mean = kld.reduce(0, +) / n
        let meanSquare = kld.reduce(0) { $0 + $1 * $1 } / n
        let error = n > 1 ? ((meanSquare - mean * mean) / (n - 1)).squareRoot() : 0
        let sorted = kld.sorted()
        let base = baseNLL.reduce(0, +) / n
        let ours = nll.reduce(0, +) / n
        var cov = 0.0, va = 0.0, vb = 0.0
        for (a, b) in zip(nll, baseNLL) {
            cov += (a - ours) * (b - base)
            va += (a - ours) * (a - ours)
            vb += (b - base) * (b - base)
        }
        let basePPL = exp(base)
        return DriftStatistics(
            tokens: kld.count, baselinePerplexity: basePPL, meanKLD: mean, meanKLDError: error,
            medianKLD: DriftAccumulator.percentile(sorted, 0.5), p99KLD: DriftAccumulator.percentile(sorted, 0.99),
            maxKLD: sorted.last ?? 0, sameTopPercent: 100 * Double(sameTop) / n, rmsDeltaPPercent: 100 * (deltaP2 / n).squareRoot(),
            deltaPerplexity: perplexity - basePPL, perplexityRatio: perplexity / basePPL,
            correlation: va > 0 && vb > 0 ? cov / (va * vb).squareRoot() : 1)
    }
}

#if canImport(Glibc)
import Glibc
#endif
