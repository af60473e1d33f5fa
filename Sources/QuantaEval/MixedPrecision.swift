import QuantaAlgorithms
import QuantaCore
import QuantaModel

/// Constraints on an allocation beyond the budget.
public struct MixConstraints: Sendable {
    /// No candidate with fewer bits per weight than this type's.
    public var minType: GGMLType?
    /// `(regex, scheme)`: tensors whose name matches take that scheme (first match wins).
    public var pins: [(pattern: String, scheme: RecipeScheme)] = []
    /// Regexes: the tensors matching one of them form a group that takes one candidate.
    public var ties: [String] = []

    public init() {}
}

/// The result of an allocation: the recipe that writes it, and what the sensitivity table predicts.
public struct MixResult: Sendable {
    public let recipe: Recipe
    /// Candidate per tensor, in the table's order.
    public let choices: [(tensor: String, candidate: String)]
    /// Bytes of the quantizable tensors as the budget counts them.
    public let bytes: Int
    /// Sum of the chosen per-tensor KLDs.
    public let predictedDrift: Double
    public let exact: Bool
}

/// Per-tensor mixed precision from a sensitivity table: one candidate per tensor minimizing the
/// summed per-tensor KLD within a byte budget (`BitAllocation`), returned as a recipe.
public enum MixedPrecision {
    /// Allocates over the table's tensors that `tensors` lists. `bytes(tensor, scheme)` is what a
    /// tensor costs as `scheme` (`.skip`: as it is) under the budget's accounting (with or without
    /// the file's alignment padding), nil when the output cannot store it so; `budget` is what
    /// those tensors may take. The recipe is for `format` (gguf or a checkpoint layout).
    public static func allocate(table: SensitivityTable, tensors: [SourceTensor], candidates: [String], budget: Int,
                                constraints: MixConstraints, format: String = "gguf", bytes: (SourceTensor, RecipeScheme) -> Int?) throws -> MixResult {
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        let pins = try constraints.pins.map { pin -> (Regex<AnyRegexOutput>, RecipeScheme) in
            do { return (try Regex(pin.pattern), pin.scheme) } catch {
                throw QuantaError(.invalidArgument, "--pin \(pin.pattern)", "not a valid regular expression")
            }
        }
        let ties = try constraints.ties.map { pattern -> Regex<AnyRegexOutput> in
            do { return try Regex(pattern) } catch { throw QuantaError(.invalidArgument, "--tie \(pattern)", "not a valid regular expression") }
        }
        let minimumBits = constraints.minType.map { SensitivityCandidate(type: $0).bitsPerWeight } ?? 0
        let parsed = candidates.compactMap { name in SensitivityCandidate(name: name).map { (name, $0) } }
            .filter { $0.1.bitsPerWeight >= minimumBits - 1e-9 }
        let awq = try SensitivityCandidate.allAWQ(parsed.map(\.1))
        // Groups: tied tensors together, every other tensor alone.
        var groups: [[Int]] = []
        var tiedGroup: [Int: Int] = [:]
        for (t, name) in table.tensors.enumerated() where byName[name] != nil {
            if let tie = ties.firstIndex(where: { name.contains($0) }) {
                if let g = tiedGroup[tie] { groups[g].append(t) } else { tiedGroup[tie] = groups.count; groups.append([t]) }
            } else {
                groups.append([t])
            }
        }
        var items: [AllocationItem] = []
        var labels: [[String]] = []
        for group in groups {
            var options: [AllocationOption] = []
            let names = group.map { table.tensors[$0] }
            guard let sources = Optional(names.compactMap { byName[$0] }), sources.count == names.count else {
                throw QuantaError(.invalidArgument, "sensitivity table", "names tensors the model does not have (\(names.joined(separator: ", ")))")
            }
            let pinned = pins.first { pin in names.contains { $0.contains(pin.0) } }?.1
            if let pinned {
                let label = pinned.description
                let drift = group.reduce(0.0) { sum, t in
                    let measured = table.kld[label]?[t] ?? 0
                    return sum + (measured.isFinite ? max(0, measured) : 0)
                }
                let costs = sources.map { bytes($0, pinned) }
                guard costs.allSatisfy({ $0 != nil }) else {
                    throw QuantaError(.invalidArgument, "tensor '\(names[0])'", "the \(format) output cannot store it as \(label) (--pin)")
                }
                options.append(AllocationOption(label: label, bytes: costs.reduce(0) { $0 + $1! }, drift: drift))
            } else {
                for (name, candidate) in parsed {
                    guard let column = table.kld[name], group.allSatisfy({ column[$0].isFinite }) else { continue }
                    let costs = sources.map { bytes($0, candidate.scheme) }
                    guard costs.allSatisfy({ $0 != nil }) else { continue }
                    options.append(AllocationOption(label: name, bytes: costs.reduce(0) { $0 + $1! }, drift: group.reduce(0.0) { $0 + max(0, column[$1]) }))
                }
            }
            guard !options.isEmpty else {
                throw QuantaError(.invalidArgument, "tensor '\(names[0])'", "no candidate fits it (measured, at or above --min-type)")
            }
            items.append(AllocationItem(name: names.joined(separator: ","), options: options))
            labels.append(names)
        }
        let allocation = try BitAllocation.solve(items, budget: budget)
        var choices: [(String, String)] = []
        for (g, group) in groups.enumerated() {
            for t in group { choices.append((table.tensors[t], items[g].options[allocation.choices[g]].label)) }
        }
        choices.sort { table.tensors.firstIndex(of: $0.0)! < table.tensors.firstIndex(of: $1.0)! }
        var recipe = recipe(choices)
        recipe.format = format
        if awq { recipe.method = "awq" }
        return MixResult(recipe: recipe, choices: choices, bytes: allocation.bytes, predictedDrift: allocation.drift, exact: allocation.exact)
    }

    /// A recipe writing `choices`: the most common candidate as the default, one exact rule per other tensor.
    static func recipe(_ choices: [(String, String)]) -> Recipe {
        var counts: [String: Int] = [:]
        for (_, c) in choices { counts[c, default: 0] += 1 }
        let common = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key ?? "Q8_0"
        func scheme(_ label: String) -> RecipeScheme? { SensitivityCandidate(name: label)?.scheme ?? RecipeScheme(label) }
        var recipe = Recipe(defaultScheme: scheme(common))
        for (name, candidate) in choices where candidate != common {
            recipe.rules.append(.init(pattern: Recipe.exact(name), scheme: scheme(candidate) ?? .skip))
        }
        return recipe
    }
}
