import BenchSupport
import CBLAS
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

// Calibration throughput (tokens/s through the block-by-block runner) with and without the Gram
// matrices, and the Gram accumulation's rate as a fraction of the sgemm peak, all in this run.
// Usage: quanta-calibrate-bench [MODEL ...] [--samples N] [--seq-len L] [--repeat R] [--threads T]
// Gram FLOPs: each input of width n costs n(n+1) per token (the upper triangle of x x^T, two
// FLOPs per multiply-add); its time is the full run's minus the diagonal-only run's. Then GPTQ's
// factorization and column solve on each model's gate projection shape and on 4096 x 4096.

var models: [String] = []
var samples = 8, length = 512, repeats = 2
var threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--samples": samples = Int(arguments.next() ?? "") ?? samples
    case "--seq-len": length = Int(arguments.next() ?? "") ?? length
    case "--repeat": repeats = Int(arguments.next() ?? "") ?? repeats
    case "--threads": threads = Int(arguments.next() ?? "") ?? threads
    default: models.append(argument)
    }
}
if models.isEmpty { models = ["Models/austen-llama"] }

let peak = max(sgemmPeak(1024, repeats), sgemmPeak(2048, repeats))

/// GPTQ on a `rows x columns` weight (4-bit, groups of 128) against the Gram matrix of 2048
/// random inputs: the factorization (potrf, potri, potrf in double: 4n³/3 FLOPs) and the
/// column solve (the in-block error updates and the lazy batch products: 2·rows per pair of
/// columns in the same or a later block) timed apart, each as a rate and a fraction of the peak.
@MainActor func gptqSolve(rows: Int, columns n: Int) throws {
    var generator = SeededGenerator(seed: 7)
    let inputs = 2048
    let x = (0..<(inputs * n)).map { _ in Float.random(in: -1...1, using: &generator) }
    var gram32 = [Float](repeating: 0, count: n * n)
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(inputs), 1, x, Int32(n), 0, &gram32, Int32(n))
    var gram = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in i..<n { gram[i * n + j] = Double(gram32[i * n + j]); gram[j * n + i] = gram[i * n + j] } }
    let weight = (0..<(rows * n)).map { _ in Float.random(in: -0.1...0.1, using: &generator) }
    let options = GPTQOptions()
    var factorization: GPTQ.Factorization?
    let factorize = try fastest(repeats) { factorization = try GPTQ.factorize(gram: gram, columns: n, options: options) }
    let solve = try fastest(repeats) {
        var quantizer = try AffineQuantizer(options: AffineQuantizer.Options(), rows: rows, columns: n)
        _ = try weight.withUnsafeBufferPointer { try GPTQ.solve(weight: $0, rows: rows, factorization: factorization!, quantizer: &quantizer) }
    }
    let b = options.blockSize
    var pairs = 0.0  // (column, later column) pairs updated: within a block, then from each block to every later column
    for i1 in stride(from: 0, to: n, by: b) {
        let count = min(b, n - i1)
        pairs += Double(count * (count - 1) / 2) + Double(count * (n - i1 - count))
    }
    let factorRate = 4 * pow(Double(n), 3) / 3 / factorize / 1e9, solveRate = 2 * Double(rows) * pairs / solve / 1e9
    print("GPTQ \(rows) x \(n): factorization \(fixed(factorize, 3)) s (\(fixed(factorRate, 1)) GFLOP/s in double = "
          + "\(fixed(100 * factorRate / peak, 0)) % of sgemm peak), solve \(fixed(solve, 3)) s (\(fixed(solveRate, 1)) GFLOP/s = "
          + "\(fixed(100 * solveRate / peak, 0)) % of sgemm peak)")
}
print("sgemm peak (n = 1024, 2048, \(threads) threads): \(fixed(peak, 1)) GFLOP/s")
do {
    for path in models {
        let source = try openModelSource(path)
        let c = source.config
        let sequences = (0..<samples).map { s in (0..<length).map { Int32(($0 * 7 + s * 13) % c.vocabSize) } }
        func run(_ hessian: HessianMode) throws -> Double {
            try fastest(repeats) {
                let runner = try BlockRunner(source: source, sequences: sequences)
                runner.hessian = hessian
                runner.threads = threads
                try runner.run(onBlock: { _ in nil }, onHead: { _ in })
            }
        }
        let diag = try run(.diag), full = try run(.full)
        let widths = [c.hiddenSize, c.qDim, c.hiddenSize, c.intermediateSize]
        let flops = Double(samples * length) * (Double(c.layerCount) * widths.map { Double($0 * ($0 + 1)) }.reduce(0, +)
            + Double(c.hiddenSize * (c.hiddenSize + 1)))
        let gramRate = flops / max(full - diag, 1e-9) / 1e9
        let tokens = Double(samples * length)
        print("\(path): \(samples) x \(length) tokens: diag \(fixed(diag, 2)) s (\(fixed(tokens / diag, 0)) tokens/s), "
              + "full \(fixed(full, 2)) s (\(fixed(tokens / full, 0)) tokens/s); Gram \(fixed(gramRate, 1)) GFLOP/s = "
              + "\(fixed(100 * gramRate / peak, 0)) % of sgemm peak")
        try gptqSolve(rows: c.intermediateSize, columns: c.hiddenSize)
    }
    try gptqSolve(rows: 4096, columns: 4096)
} catch {
    print("quanta-calibrate-bench: \(error)")
    exit(1)
}
