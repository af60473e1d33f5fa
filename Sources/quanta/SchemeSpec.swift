import QuantaAlgorithms
import QuantaCore

/// A scheme of `quanta compare`, as the `quanta quantize` arguments it stands for:
/// - `Q4_K_M`, `Q4_K`... (a GGUF preset or type; with the calibration set's importance matrix),
///   `rtn:Q4_K_M` (the same without one), `gptq:Q4_K`, `awq:Q4_K_M`, `awq+gptq:Q4_K` (a method into GGUF);
/// - `rtn:w4g128`, `gptq:w4g128`, `gptq:w4g128:act-order`, `awq:w4g128`, `awq+gptq:w3g128`
///   (integer grids in a GPTQModel folder; `:asym`, `:sym`, `:mse`, `:static-groups` too);
/// - `mixed:4.5bpw`, `mixed:Q4_K_M-size` (the allocation at a bits-per-weight or at a preset file's size);
/// - `recipe:FILE` (a YAML recipe).
struct SchemeSpec: Equatable {
    let name: String
    let method: String
    /// gguf or gptq.
    let format: String
    /// Runs once per calibration set (false: once, calibration-free).
    let calibrated: Bool
    /// quantize arguments after MODEL OUT; "{stats}" is the calibration set's statistics.
    let arguments: [String]
    /// `mixed:PRESET-size`: the preset whose file size is the target.
    let sizeOf: String?

    static func parse(_ text: String) throws -> SchemeSpec {
        func bad(_ why: String) -> QuantaError { QuantaError(.invalidArgument, "scheme '\(text)'", why) }
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if parts.count == 1 {
            guard GGUFPreset(name: text) != nil else { throw bad("is not a GGUF preset or type, METHOD:SPEC, mixed:BUDGET or recipe:FILE") }
            return SchemeSpec(name: text, method: "rtn", format: "gguf", calibrated: true, arguments: [text, "--stats", "{stats}"], sizeOf: nil)
        }
        let (head, rest) = (parts[0], parts[1])
        switch head {
        case "mixed":
            if rest.hasSuffix("bpw"), let bpw = Double(rest.dropLast(3)), bpw > 0, bpw <= 32 {
                return SchemeSpec(name: text, method: "mixed", format: "gguf", calibrated: true,
                                  arguments: ["--target-bpw", String(bpw), "--stats", "{stats}", "--sensitivity", "{sensitivity}"], sizeOf: nil)
            }
            if rest.hasSuffix("-size"), GGUFPreset(name: String(rest.dropLast(5))) != nil {
                return SchemeSpec(name: text, method: "mixed", format: "gguf", calibrated: true,
                                  arguments: ["--target-size", "{size}", "--stats", "{stats}", "--sensitivity", "{sensitivity}"], sizeOf: String(rest.dropLast(5)))
            }
            throw bad("a mixed budget is NUMBERbpw or PRESET-size (mixed:4.5bpw, mixed:Q4_K_M-size)")
        case "recipe":
            guard !rest.isEmpty else { throw bad("recipe:FILE needs the file") }
            return SchemeSpec(name: text, method: "recipe", format: "gguf", calibrated: true, arguments: ["--recipe", rest, "--stats", "{stats}"], sizeOf: nil)
        case "rtn", "gptq", "awq", "awq+gptq":
            let options = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if let preset = GGUFPreset(name: options[0]) {
                guard options.count == 1 else { throw bad("a GGUF type takes no further options") }
                if head == "rtn" { return SchemeSpec(name: text, method: "rtn", format: "gguf", calibrated: false, arguments: [preset.rawValue], sizeOf: nil) }
                return SchemeSpec(name: text, method: head, format: "gguf", calibrated: true, arguments: [options[0], "--method", head, "--stats", "{stats}"], sizeOf: nil)
            }
            guard let grid = GridScheme(options[0]) else { throw bad("expected a GGUF type or wBITSgGROUP (w4g128, w3g-1)") }
            var arguments = ["--format", "gptq", "--method", head, "--bits", String(grid.bits), "--group-size", String(grid.groupSize)]
            for option in options.dropFirst() {
                switch option {
                case "act-order", "asym", "sym", "mse", "static-groups": arguments.append("--" + option)
                default: throw bad("unknown option '\(option)' (act-order, asym, sym, mse, static-groups)")
                }
            }
            if head != "rtn" { arguments += ["--stats", "{stats}"] }
            return SchemeSpec(name: text, method: head, format: "gptq", calibrated: head != "rtn", arguments: arguments, sizeOf: nil)
        default:
            throw bad("unknown method '\(head)' (rtn, gptq, awq, awq+gptq, mixed, recipe)")
        }
    }

    /// A scheme that runs without calibration when no set is given (GGUF presets lose their importance matrix).
    var withoutCalibration: SchemeSpec? {
        guard method == "rtn" && format == "gguf" else { return nil }
        return SchemeSpec(name: name, method: "rtn", format: "gguf", calibrated: false, arguments: [arguments[0]], sizeOf: nil)
    }
}
