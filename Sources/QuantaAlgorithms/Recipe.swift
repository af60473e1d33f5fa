import QuantaCore
import QuantaFormats
import Yams

/// What a recipe does to one tensor.
public enum RecipeScheme: Sendable, Equatable, CustomStringConvertible {
    /// Keep the source type.
    case skip
    /// A ggml type, rounded with the importance matrix (`rtn`) or solved by GPTQ (`gptq`);
    /// `method` nil follows the recipe's method.
    case type(GGMLType, method: String?)
    /// An integer grid of the checkpoint layouts (`w4g128`, `w3g64:asym`), rounded (`rtn`) or
    /// solved by GPTQ (`gptq`).
    case grid(GridScheme, method: String?)

    /// Parses `skip`, `TYPE`, `TYPE+rtn`, `TYPE+gptq` (a type Quanta writes) or a grid with
    /// the same suffixes (`w4g128+gptq`); nil otherwise.
    public init?(_ text: String) {
        if text == "skip" { self = .skip; return }
        let parts = text.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        var method: String?
        if parts.count == 2 {
            guard Recipe.methods.contains(parts[1]) else { return nil }
            method = parts[1]
        }
        if let grid = GridScheme(parts[0]) {
            self = .grid(grid, method: method)
            return
        }
        guard let type = GGMLType(name: parts[0]), type == .f16 || type == .f32 || BlockFormats.format(type)?.canQuantize == true else { return nil }
        self = .type(type, method: method)
    }

    public var description: String {
        switch self {
        case .skip: "skip"
        case let .type(type, method): type.name + (method.map { "+" + $0 } ?? "")
        case let .grid(grid, method): grid.description + (method.map { "+" + $0 } ?? "")
        }
    }

    /// Whether it is an integer grid (written to checkpoint folders, not GGUF).
    public var isGrid: Bool { if case .grid = self { true } else { false } }
}

/// A quantization recipe: which scheme each tensor gets (a base preset's rules, or a default
/// scheme, then ordered `regex -> scheme` rules where the first match wins), the calibration
/// settings and the method's options. Read from YAML:
///
/// ```yaml
/// preset: Q4_K_M            # or: default: Q4_K  (one of the two)
/// rules:                    # first match wins; `match` is searched in the GGUF tensor name
///   - match: 'blk\.[0-2]\.ffn_down\.weight'
///     scheme: Q6_K          # a ggml type, TYPE+gptq / TYPE+rtn, or skip
/// method: {name: gptq, damp: 0.01, act_order: false}
/// calibration: {data: Calibration/calib-wiki.txt, samples: 128, seq_len: 512, seed: 0}
/// ```
///
/// A checkpoint folder's recipe names its layout and uses integer grids (`wBITSgGROUP[:asym]`,
/// with the same `+gptq` / `+rtn` suffixes) for the decoder's linears:
///
/// ```yaml
/// format: gptq              # gptq, mlx or compressed-tensors
/// default: w4g128
/// rules:
///   - match: 'blk\.0\.ffn_down\.weight'
///     scheme: w8g128
/// ```
public struct Recipe: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var pattern: String
        public var scheme: RecipeScheme

        public init(pattern: String, scheme: RecipeScheme) {
            self.pattern = pattern
            self.scheme = scheme
        }
    }

    public struct Calibration: Sendable, Equatable {
        public var data: String
        public var samples = 128
        public var sequenceLength = 512
        public var seed: UInt64 = 0

        public init(data: String) { self.data = data }
    }

    /// A scheme's method suffix.
    static let methods = ["rtn", "gptq"]
    /// The recipe's method: AWQ rescales whole blocks, so it is the recipe's, never one tensor's.
    static let recipeMethods = ["rtn", "gptq", "awq"]

    /// The output: `gguf`, or a checkpoint folder layout (`CheckpointLayouts`).
    public var format = "gguf"
    /// The llama-quantize preset whose rules pick the types no rule matches (nil: `defaultScheme`).
    public var preset: String?
    public var defaultScheme: RecipeScheme?
    public var rules: [Rule] = []
    /// rtn, gptq or awq (the whole model rescaled by AWQ before each tensor is rounded as its
    /// scheme says; GGUF only).
    public var method = "rtn"
    public var damp = 0.01
    public var actOrder = false
    /// Integer grids: every group fitted from the original weights first; the clipping search.
    public var staticGroups = false
    public var mse = false
    public var calibration: Calibration?

    public init(preset: String? = nil, defaultScheme: RecipeScheme? = nil) {
        self.preset = preset
        self.defaultScheme = defaultScheme
    }

    /// A pattern matching exactly `name` (regex metacharacters escaped).
    public static func exact(_ name: String) -> String {
        "^" + name.map { "\\^$.|?*+()[]{}".contains($0) ? "\\\($0)" : String($0) }.joined() + "$"
    }

    /// The scheme of tensor `name`: the first rule whose pattern occurs in it, else the default
    /// (nil: the preset decides). Patterns must be valid (`parse` checks them).
    public func scheme(for name: String) -> RecipeScheme? {
        for rule in rules where (try? Regex(rule.pattern)).map({ name.contains($0) }) == true { return rule.scheme }
        return defaultScheme
    }

    /// The recipe as YAML, every setting explicit: what outputs embed and `parse` reads back.
    public var yaml: String {
        var lines = ["# quanta recipe (first matching rule wins)"]
        if format != "gguf" { lines.append("format: \(format)") }
        if let preset { lines.append("preset: \(preset)") }
        if let defaultScheme { lines.append("default: \(defaultScheme)") }
        if rules.isEmpty {
            lines.append("rules: []")
        } else {
            lines.append("rules:")
            for rule in rules {
                lines.append("  - match: \(Recipe.yamlScalar(rule.pattern))")
                lines.append("    scheme: \(rule.scheme)")
            }
        }
        lines.append("method:")
        lines.append("  name: \(method)")
        lines.append("  damp: \(damp)")
        lines.append("  act_order: \(actOrder)")
        if staticGroups { lines.append("  static_groups: true") }
        if mse { lines.append("  mse: true") }
        if let c = calibration {
            lines.append("calibration:")
            lines.append("  data: \(Recipe.yamlScalar(c.data))")
            lines.append("  samples: \(c.samples)")
            lines.append("  seq_len: \(c.sequenceLength)")
            lines.append("  seed: \(c.seed)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` as a YAML scalar that reads back as itself: single-quoted (backslashes as they are,
    /// so patterns stay readable) when every character is printable and none is a line break,
    /// a BOM or a tab; otherwise double-quoted with escapes for those characters, `\` and `"`.
    static func yamlScalar(_ text: String) -> String {
        func plain(_ u: Unicode.Scalar) -> Bool {
            switch u.value {
            case 0x20...0x7E, 0xA0...0x2027, 0x202A...0xD7FF, 0xE000...0xFEFE, 0xFF00...0xFFFD, 0x10000...0x10FFFF: true
            default: false
            }
        }
        if text.unicodeScalars.allSatisfy(plain) { return "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
        var out = "\""
        for u in text.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if plain(u) {
                    out.unicodeScalars.append(u)
                } else {
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += u.value <= 0xFFFF ? "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                                             : "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
                }
            }
        }
        return out + "\""
    }

    /// Parses a recipe; errors name `file`, the line and column, and what is wrong.
    public static func parse(_ text: String, file: String) throws -> Recipe {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw RecipeParser.yamlError(error, file: file)
        } catch {
            throw QuantaError.malformed(file, "\(error)")
        }
        return try RecipeParser(file: file).recipe(root)
    }
}

/// Walks the composed YAML, checking every key and value against the node's position.
struct RecipeParser {
    let file: String

    func fail(_ node: Node?, _ reason: String) -> QuantaError {
        guard let mark = node?.mark else { return QuantaError.malformed(file, reason) }
        return QuantaError.malformed("\(file):\(mark.line):\(mark.column)", reason)
    }

    static func yamlError(_ error: YamlError, file: String) -> QuantaError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return QuantaError.malformed("\(file):\(mark.line):\(mark.column)", "not valid YAML: \(problem)")
        default:
            return QuantaError.malformed(file, "not valid YAML: \(error)")
        }
    }

    func mapping(_ node: Node?, _ what: String, keys: [String]) throws -> [(String, Node, Node)] {
        guard let node, case let .mapping(map) = node else { throw fail(node, "\(what) must be a mapping") }
        var seen = Set<String>()
        return try map.map { key, value in
            guard let name = key.string else { throw fail(key, "\(what): keys must be strings") }
            guard keys.contains(name) else { throw fail(key, "\(what): unknown key '\(name)' (expected \(keys.joined(separator: ", ")))") }
            guard seen.insert(name).inserted else { throw fail(key, "\(what): '\(name)' appears twice") }
            return (name, key, value)
        }
    }

    func string(_ node: Node, _ what: String) throws -> String {
        guard case let .scalar(scalar) = node else { throw fail(node, "\(what) must be a single value") }
        return scalar.string
    }

    func integer(_ node: Node, _ what: String, range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(try string(node, what)), range.contains(value) else {
            throw fail(node, "\(what) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func scheme(_ node: Node, _ what: String) throws -> RecipeScheme {
        let text = try string(node, what)
        guard let scheme = RecipeScheme(text) else {
            throw fail(node, "\(what): unknown scheme '\(text)' (a ggml type Quanta writes such as Q4_K, a grid such as w4g128 or w3g64:asym, either with +gptq or +rtn, or skip)")
        }
        return scheme
    }

    /// GGUF recipes take ggml types, checkpoint recipes integer grids (and skip).
    func checkSchemes(_ recipe: Recipe, _ root: Node) throws {
        guard case let .mapping(map) = root else { return }
        func node(_ key: String) -> Node? { map.first { $0.key.string == key }?.value }
        let gguf = recipe.format == "gguf"
        func misplaced(_ scheme: RecipeScheme) -> String {
            gguf ? "\(scheme) is an integer grid: add format: gptq, mlx or compressed-tensors" : "\(scheme) is a GGUF type; a \(recipe.format) recipe takes grids such as w4g128"
        }
        if !gguf, recipe.preset != nil { throw fail(node("preset"), "a \(recipe.format) recipe takes default: wBITSgGROUP, not a preset") }
        if let scheme = recipe.defaultScheme, scheme != .skip, scheme.isGrid == gguf {
            throw fail(node("default"), misplaced(scheme))
        }
        if recipe.defaultScheme == .skip { throw fail(node("default"), "the default scheme cannot be skip") }
        if recipe.method == "awq" {
            guard gguf else { throw fail(node("method"), "AWQ recipes write GGUF (a \(recipe.format) folder takes rtn or gptq)") }
            let solved = ([recipe.defaultScheme].compactMap { $0 } + recipe.rules.map(\.scheme)).first {
                if case .type(_, "gptq"?) = $0 { true } else { false }
            }
            if let solved { throw fail(node("method"), "an AWQ recipe rounds every tensor; \(solved) asks for GPTQ") }
        }
        let ruleNodes: [Node] = if case let .sequence(rules)? = node("rules") { Array(rules) } else { [] }
        for (rule, ruleNode) in zip(recipe.rules, ruleNodes) where rule.scheme != .skip && rule.scheme.isGrid == gguf {
            let at = (ruleNode.mapping?.first { $0.key.string == "scheme" }?.value) ?? ruleNode
            throw fail(at, misplaced(rule.scheme))
        }
    }

    func recipe(_ root: Node?) throws -> Recipe {
        guard let root else { throw QuantaError.malformed(file, "the recipe is empty") }
        var recipe = Recipe()
        for (name, _, value) in try mapping(root, "recipe", keys: ["format", "preset", "default", "rules", "method", "calibration"]) {
            switch name {
            case "format":
                let text = try string(value, "format")
                guard text == "gguf" || CheckpointLayouts.named(text)?.mixesGrids == true else {
                    throw fail(value, "unknown format '\(text)' (gguf, \(CheckpointLayouts.all.filter(\.mixesGrids).map(\.name).joined(separator: ", ")))")
                }
                recipe.format = text
            case "preset":
                let text = try string(value, "preset")
                guard GGUFPreset(name: text) != nil else {
                    throw fail(value, "unknown preset '\(text)' (one of \(GGUFPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                recipe.preset = text
            case "default": recipe.defaultScheme = try scheme(value, "default")
            case "rules":
                guard case let .sequence(rules) = value else { throw fail(value, "rules must be a list") }
                for rule in rules {
                    var pattern: String?, scheme: RecipeScheme?
                    for (field, _, v) in try mapping(rule, "rule", keys: ["match", "scheme"]) {
                        if field == "match" {
                            let text = try string(v, "match")
                            do {
                                _ = try Regex(text)
                            } catch {
                                throw fail(v, "match '\(text)' is not a valid regular expression")
                            }
                            pattern = text
                        } else {
                            scheme = try self.scheme(v, "scheme")
                        }
                    }
                    guard let pattern, let scheme else { throw fail(rule, "a rule needs both match and scheme") }
                    recipe.rules.append(.init(pattern: pattern, scheme: scheme))
                }
            case "method":
                for (field, _, v) in try mapping(value, "method", keys: ["name", "damp", "act_order", "static_groups", "mse"]) {
                    switch field {
                    case "name":
                        let text = try string(v, "method name")
                        guard Recipe.recipeMethods.contains(text) else {
                            throw fail(v, "method '\(text)' is not available in recipes (\(Recipe.recipeMethods.joined(separator: ", ")))")
                        }
                        recipe.method = text
                    case "damp":
                        guard let d = Double(try string(v, "damp")), d > 0, d < 1 else { throw fail(v, "damp must be a number between 0 and 1") }
                        recipe.damp = d
                    default:
                        guard let flag = v.bool else { throw fail(v, "\(field) must be true or false") }
                        switch field {
                        case "act_order": recipe.actOrder = flag
                        case "static_groups": recipe.staticGroups = flag
                        default: recipe.mse = flag
                        }
                    }
                }
            default:
                let fields = try mapping(value, "calibration", keys: ["data", "samples", "seq_len", "seed"])
                guard let data = fields.first(where: { $0.0 == "data" }) else { throw fail(value, "calibration needs data (a text file)") }
                var c = Recipe.Calibration(data: try string(data.2, "data"))
                for (field, _, v) in fields {
                    switch field {
                    case "samples": c.samples = try integer(v, "samples", range: 1...1_000_000)
                    case "seq_len": c.sequenceLength = try integer(v, "seq_len", range: 2...1_000_000)
                    case "seed": c.seed = UInt64(try integer(v, "seed", range: 0...Int.max))
                    default: break
                    }
                }
                recipe.calibration = c
            }
        }
        guard (recipe.preset == nil) != (recipe.defaultScheme == nil) else {
            throw fail(root, "give preset (llama-quantize's rules) or default (one scheme), one of them")
        }
        try checkSchemes(recipe, root)
        return recipe
    }
}
