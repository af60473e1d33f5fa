import BenchSupport
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
// FLOPs per multiply-add); its time is the full run's minus the diagonal-only run's.

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
    }
} catch {
    print("quanta-calibrate-bench: \(error)")
    exit(1)
}
