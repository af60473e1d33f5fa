import BenchSupport
import CBLAS
import QuantaCore
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

// Forward-pass throughput at ctx 512 and its fraction of the sgemm peak measured in this run.
// Usage: quanta-forward-bench [MODEL ...] [--ctx N] [--batch B] [--repeat R]
//        quanta-forward-bench --products [--repeat R]: the packed product and the tiled ggml-order
//        product against OpenBLAS sgemm on SmolLM2-135M's linear shapes at 2048 rows (the head
//        at 1024), GFLOP/s each.
// B sequences of N tokens go through one pass (llama-perplexity's default n_batch 2048 is 4
// sequences of 512). FLOPs: 2 per parameter of every matrix per token, plus QKᵀ and PV over the
// full T x T score matrix (the usual convention; the causal pass computes about half of that).

var models: [String] = []
var ctx = 512
var repeats = 3
var batch = 4
var products = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--ctx": ctx = Int(arguments.next() ?? "") ?? ctx
    case "--repeat": repeats = Int(arguments.next() ?? "") ?? repeats
    case "--batch": batch = Int(arguments.next() ?? "") ?? batch
    case "--products": products = true
    default: models.append(argument)
    }
}
if models.isEmpty { models = ["Models/austen-llama"] }


let peak = max(sgemmPeak(1024, repeats), sgemmPeak(2048, repeats))
print("sgemm peak (n = 1024, 2048): \(fixed(peak, 1)) GFLOP/s")
if products {
    let threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    print("rows x outputs x inputs   packed GFLOP/s   tiled GFLOP/s   sgemm GFLOP/s   packed / sgemm")
    for (m, n, k) in [(2048, 576, 576), (2048, 192, 576), (2048, 1536, 576), (2048, 576, 1536), (1024, 49152, 576)] {
        let a = (0..<(m * k)).map { Float(($0 * 37) % 101) / 101 - 0.5 }, b = (0..<(n * k)).map { Float(($0 * 53) % 89) / 89 - 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        let flops = 2 * Double(m * n * k)
        let packed = fastest(repeats) { PackedProduct.product(m, n, k, a, b, &c, ldc: n, accumulate: false, threads: threads) }
        let tiled = fastest(repeats) { TiledProduct.product(m, n, k, a, b, &c, ldc: n, accumulate: false, threads: threads) }
        let blas = fastest(repeats) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(k), 0, &c, Int32(n))
        }
        print("\("\(m) x \(n) x \(k)".padded(24)) \(fixed(flops / packed / 1e9, 1).leftPadded(15)) \(fixed(flops / tiled / 1e9, 1).leftPadded(15)) "
              + "\(fixed(flops / blas / 1e9, 1).leftPadded(15)) \(fixed(blas / packed, 2).leftPadded(16))")
    }
    exit(0)
}
do {
    for path in models {
        let model = try DecoderModel(path: path)
        let c = model.config
        let tokens = (0..<batch).map { b in (0..<ctx).map { Int32(($0 * 7 + b) % c.vocabSize) } }
        // Matrix products: 2 * params of every linear per token, attention QK^T and PV (causal half counted in full).
        let linear = c.layerCount * (c.hiddenSize * (c.qDim + 2 * c.kvDim) + c.qDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize)
            + c.vocabSize * c.hiddenSize
        let flops = Double(batch) * (2 * Double(linear) * Double(ctx) + 4 * Double(c.layerCount * c.headCount * ctx * ctx * c.headDim))
        _ = try model.withLogits(tokens) { $0.count }
        let best = try fastest(repeats) { _ = try model.withLogits(tokens) { $0.count } }
        let rate = flops / best / 1e9
        print("\(path): \(batch) x ctx \(ctx): \(fixed(best, 3)) s, \(fixed(Double(batch * ctx) / best, 0)) tokens/s, "
              + "\(fixed(rate, 1)) GFLOP/s = \(fixed(100 * rate / peak, 0)) % of sgemm peak")
    }
} catch {
    print("quanta-forward-bench: \(error)")
    exit(1)
}
