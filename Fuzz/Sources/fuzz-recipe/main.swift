import FuzzSupport
import QuantaAlgorithms

// A YAML recipe (`quanta quantize --recipe`): schemes, rules with name patterns, calibration.
// What parses resolves tensor names and writes YAML that parses to the same recipe.
let names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.11.ffn_down.weight", "output.weight", ""]

fuzzMain { bytes in
    let text = String(decoding: bytes, as: UTF8.self)
    guard let recipe = try? Recipe.parse(text, file: "recipe.yaml") else { return }
    for name in names { _ = recipe.scheme(for: name) }
    let yaml = recipe.yaml
    guard let again = try? Recipe.parse(yaml, file: "written.yaml") else { fatalError("written recipe does not parse:\n\(yaml)") }
    precondition(again == recipe, "recipe changed through YAML:\n\(yaml)")
}
