@testable import FieldSyncCore
import Testing

// MARK: - Seeded randomness

/// A tiny, fully specified generator (SplitMix64) so property checks are reproducible:
/// every property test prints the seed it failed with.
struct SplitMix64: RandomNumberGenerator {
    private(set) var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seeds every property check runs with.
let propertySeeds: [UInt64] = Array(1...40) + [0xDEAD_BEEF, 0x1234_5678_9ABC_DEF0, UInt64.max]

// MARK: - Ids

/// Three sites whose numeric order is A < B < C (the hex text orders the same way).
let siteA = SiteID(raw: 0x0000_0000_0000_00a1)
let siteB = SiteID(raw: 0x0000_0000_0000_00b2)
let siteC = SiteID(raw: 0x0000_0000_0000_00c3)

func dot(_ site: SiteID, _ counter: Int64) -> ChangeID { ChangeID(site: site, counter: counter) }

func vv(_ dots: ChangeID...) -> VersionVector {
    var v = VersionVector()
    for d in dots { v.include(d) }
    return v
}

func hlc(_ millis: Int64, _ counter: UInt16 = 0) -> HybridTimestamp {
    HybridTimestamp(millis: millis, counter: counter)
}

func entry(_ d: ChangeID, at t: Int64, _ value: FieldValue, seen: VersionVector = VersionVector(),
           rowContext: [String: VersionVector]? = nil) -> RegisterEntry {
    RegisterEntry(dot: d, hlc: hlc(t), context: seen, value: value, rowContext: rowContext)
}

/// All orderings of `items` (Heap's algorithm); fine for up to 7 items.
func permutations<T>(_ items: [T]) -> [[T]] {
    var a = items
    var out: [[T]] = []
    func generate(_ k: Int) {
        if k <= 1 { out.append(a); return }
        generate(k - 1)
        for i in 0..<(k - 1) {
            a.swapAt(k % 2 == 0 ? i : 0, k - 1)
            generate(k - 1)
        }
    }
    generate(a.count)
    return out
}

// MARK: - Errors as values

func jsonError(_ bytes: [UInt8]) -> JSONSyntaxError? {
    do throws(JSONSyntaxError) {
        _ = try JSONValue.parse(bytes: bytes)
        return nil
    } catch {
        return error
    }
}

func jsonError(_ text: String) -> JSONSyntaxError? { jsonError(Array(text.utf8)) }

func decodeError(_ spec: FieldSpec, _ json: JSONValue) -> InputError? {
    do throws(InputError) {
        _ = try spec.decode(json)
        return nil
    } catch {
        return error
    }
}

func changeError(_ json: JSONValue) -> InputError? {
    do throws(InputError) {
        _ = try ChangeCodec.decode(json)
        return nil
    } catch {
        return error
    }
}
