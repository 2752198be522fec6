@testable import FieldSyncCore
import Testing

@Suite struct FieldRegisterSpec {
    let x: FieldValue = .text("受理")
    let y: FieldValue = .text("已化解")
    let z: FieldValue = .text("已上报")

    // MARK: The three rules of applying a write

    @Test func firstWriteIsAppliedAndWins() {
        var r = FieldRegister()
        #expect(r.isEmpty)
        #expect(r.value == .null)
        #expect(r.merge(entry(dot(siteA, 1), at: 100, x)) == .applied(replaced: []))
        #expect(r.value == x)
        #expect(r.winner?.dot == dot(siteA, 1))
        #expect(!r.isConflict)
    }

    @Test func duplicateIdChangesNothing() {
        var r = FieldRegister()
        let a = entry(dot(siteA, 1), at: 100, x)
        r.merge(a)
        let before = r
        #expect(r.merge(a) == .duplicate)
        #expect(r == before)
    }

    @Test func obsoleteWriteIsNotHeld() {
        let a = entry(dot(siteA, 1), at: 100, x)
        let b = entry(dot(siteB, 1), at: 200, y, seen: vv(dot(siteA, 1)))
        var r = FieldRegister()
        r.merge(b)
        // a arrives after b, whose author had seen a: a is obsolete
        #expect(r.merge(a) == .obsolete)
        #expect(r.entries.map(\.dot) == [dot(siteB, 1)])
        #expect(r.value == y)
    }

    @Test func obsoleteEvenWhenTheCoveringWriteHasAnOlderClock() {
        // The clock of the replacing write was behind; seen still decides.
        let a = entry(dot(siteA, 3), at: 900, x)
        let b = entry(dot(siteB, 1), at: 100, y, seen: vv(dot(siteA, 3)))
        var r = FieldRegister()
        r.merge(a)
        #expect(r.merge(b) == .applied(replaced: [a]))
        #expect(r.entries == [b])
        var s = FieldRegister()
        s.merge(b)
        #expect(s.merge(a) == .obsolete)
        #expect(s == r)
    }

    @Test func writeReplacesEveryHeldEntryItHadSeen() {
        let a = entry(dot(siteA, 1), at: 100, x)
        let b = entry(dot(siteB, 1), at: 110, z)
        let c = entry(dot(siteC, 1), at: 120, x)
        let w = entry(dot(siteA, 4), at: 300, y, seen: vv(dot(siteA, 1), dot(siteB, 1)))
        var r = FieldRegister(entries: [a, b, c])
        guard case .applied(let replaced) = r.merge(w) else {
            Issue.record("expected applied")
            return
        }
        #expect(Set(replaced.map(\.dot)) == [dot(siteA, 1), dot(siteB, 1)])
        // c was not seen by w: the two are concurrent siblings
        #expect(r.entries.map(\.dot) == [dot(siteA, 4), dot(siteC, 1)])
        #expect(r.isConflict)
    }

    @Test func aVectorEntryCoversEarlierCountersOfThatSite() {
        // seen {A:5} covers A:2 even though A:2 itself was never named.
        let a = entry(dot(siteA, 2), at: 100, x)
        var r = FieldRegister()
        r.merge(a)
        #expect(r.merge(entry(dot(siteB, 1), at: 50, y, seen: vv(dot(siteA, 5)))) == .applied(replaced: [a]))
        #expect(r.entries.map(\.dot) == [dot(siteB, 1)])
    }

    // MARK: Siblings, winner and conflicts

    @Test func concurrentWritesAreBothKeptWinnerFirst() {
        let a = entry(dot(siteA, 1), at: 200, x)
        let b = entry(dot(siteB, 1), at: 100, y)
        for order in [[a, b], [b, a]] {
            var r = FieldRegister()
            for e in order { #expect(r.merge(e) == .applied(replaced: [])) }
            #expect(r.entries.map(\.dot) == [dot(siteA, 1), dot(siteB, 1)])
            #expect(r.value == x)  // later clock wins
            #expect(r.isConflict)
        }
    }

    @Test func equalClocksAreBrokenByLargerSiteThenLargerCounter() {
        let t: Int64 = 500
        let r1 = FieldRegister(entries: [entry(dot(siteA, 9), at: t, x), entry(dot(siteC, 1), at: t, y), entry(dot(siteB, 5), at: t, z)])
        #expect(r1.entries.map(\.dot) == [dot(siteC, 1), dot(siteB, 5), dot(siteA, 9)])
        let r2 = FieldRegister(entries: [entry(dot(siteA, 2), at: t, x), entry(dot(siteA, 3), at: t, y)])
        #expect(r2.winner?.dot == dot(siteA, 3))
        // the clock counter comes before the site
        let r3 = FieldRegister(entries: [
            RegisterEntry(dot: dot(siteC, 1), hlc: hlc(t, 0), context: VersionVector(), value: x),
            RegisterEntry(dot: dot(siteA, 1), hlc: hlc(t, 1), context: VersionVector(), value: y),
        ])
        #expect(r3.winner?.dot == dot(siteA, 1))
    }

    @Test func siteOrderIsNumericWhichIsHexTextOrder() {
        let small = SiteID(hex: "0fffffffffffffff")!, large = SiteID(hex: "f000000000000000")!
        let r = FieldRegister(entries: [entry(dot(small, 1), at: 1, x), entry(dot(large, 1), at: 1, y)])
        #expect(r.value == y)
        #expect(small.hex < large.hex)
    }

    @Test func concurrentWritesOfOneValueAreNotAConflict() {
        var r = FieldRegister()
        r.merge(entry(dot(siteA, 1), at: 100, y))
        r.merge(entry(dot(siteB, 1), at: 200, y))
        #expect(r.entries.count == 2)
        #expect(!r.isConflict)
        r.merge(entry(dot(siteC, 1), at: 150, x))
        #expect(r.isConflict)
    }

    @Test func sequentialOverwriteIsNeverAConflict() {
        var r = FieldRegister()
        r.merge(entry(dot(siteA, 1), at: 100, x))
        r.merge(entry(dot(siteB, 1), at: 200, y, seen: vv(dot(siteA, 1))))
        r.merge(entry(dot(siteA, 5), at: 300, z, seen: vv(dot(siteA, 1), dot(siteB, 1))))
        #expect(r.entries.count == 1)
        #expect(!r.isConflict)
        #expect(r.value == z)
    }

    @Test func integerAndTextValuesAreDifferentValues() {
        let r = FieldRegister(entries: [entry(dot(siteA, 1), at: 1, .integer(1)), entry(dot(siteB, 1), at: 2, .text("1"))])
        #expect(r.isConflict)
        let n = FieldRegister(entries: [entry(dot(siteA, 1), at: 1, .null), entry(dot(siteB, 1), at: 2, .null)])
        #expect(!n.isConflict)
        let m = FieldRegister(entries: [entry(dot(siteA, 1), at: 1, .null), entry(dot(siteB, 1), at: 2, .text(""))])
        #expect(m.isConflict)
    }

    /// The protocol: "Two values are equal when their stored forms are equal: strings byte for
    /// byte". "café" written with U+00E9 and with "e" + U+0301 are different bytes, so two
    /// concurrent writes of them are a conflict (another implementation comparing bytes shows one).
    @Test func valuesDifferingOnlyInUnicodeNormalizationAreAConflict() {
        let composed = FieldValue.text("caf\u{E9}")
        let decomposed = FieldValue.text("cafe\u{301}")
        #expect(Array(composed.text!.utf8) != Array(decomposed.text!.utf8))
        let r = FieldRegister(entries: [entry(dot(siteA, 1), at: 1, composed), entry(dot(siteB, 1), at: 2, decomposed)])
        #expect(r.isConflict)
    }

    // MARK: Context

    @Test func contextIsTheUnionOfEntriesDotsAndContexts() {
        var r = FieldRegister()
        #expect(r.context.isEmpty)
        r.merge(entry(dot(siteA, 4), at: 100, x, seen: vv(dot(siteA, 2), dot(siteB, 7))))
        r.merge(entry(dot(siteC, 2), at: 100, y, seen: vv(dot(siteB, 3), dot(siteC, 1))))
        #expect(r.entries.count == 2)
        #expect(r.context == vv(dot(siteA, 4), dot(siteB, 7), dot(siteC, 2)))
    }

    @Test func aWriteMadeWithTheContextReplacesEveryEntry() {
        var r = FieldRegister(entries: [entry(dot(siteA, 1), at: 1, x), entry(dot(siteB, 1), at: 2, y), entry(dot(siteC, 1), at: 3, z)])
        #expect(r.isConflict)
        let settle = entry(dot(siteA, 2), at: 4, y, seen: r.context)
        guard case .applied(let replaced) = r.merge(settle) else {
            Issue.record("expected applied")
            return
        }
        #expect(replaced.count == 3)
        #expect(r.entries == [settle])
        #expect(!r.isConflict)
    }

    // MARK: Conflict opening time

    @Test func conflictOpensAtTheFirstWriteThatDisagrees() {
        // by time: A 100 受理, B 200 受理, C 300 已化解 → the values first disagree at 300
        let agree = FieldRegister(entries: [entry(dot(siteA, 1), at: 100, x), entry(dot(siteB, 1), at: 200, x), entry(dot(siteC, 1), at: 300, y)])
        let c1 = RowConflict(field: "status", kind: .concurrentValues, entries: agree.entries)
        #expect(c1.openedAt == hlc(300))
        // by time: A 100 受理, B 200 已化解, C 300 受理 → 200
        let early = FieldRegister(entries: [entry(dot(siteA, 1), at: 100, x), entry(dot(siteB, 1), at: 200, y), entry(dot(siteC, 1), at: 300, x)])
        let c2 = RowConflict(field: "status", kind: .concurrentValues, entries: early.entries)
        #expect(c2.openedAt == hlc(200))
        #expect(c2.dots == [dot(siteA, 1), dot(siteB, 1), dot(siteC, 1)])
    }

    // MARK: Order independence

    /// Six writes by three sites, with the contexts those sites would really have had:
    ///
    ///     A:1 受理   seen {}              (the creation)
    ///     B:1 调解中 seen {A:1}           (B saw the creation)
    ///     C:1 已上报 seen {A:1}           (C too, concurrently with B)
    ///     C:2 已化解 seen {A:1, C:1}      (C overwrote its own write)
    ///     B:2 未化解 seen {A:1, B:1, C:1} (B had received C:1, not C:2)
    ///     A:2 已化解 seen {A:1, B:1}      (A had received B:1 only)
    ///
    /// No write saw A:2, B:2 or C:2, so those three are the register; A:2 has the latest clock.
    static let scenario: [RegisterEntry] = [
        entry(dot(siteA, 1), at: 100, .text("受理")),
        entry(dot(siteB, 1), at: 200, .text("调解中"), seen: vv(dot(siteA, 1))),
        entry(dot(siteC, 1), at: 210, .text("已上报"), seen: vv(dot(siteA, 1))),
        entry(dot(siteC, 2), at: 250, .text("已化解"), seen: vv(dot(siteA, 1), dot(siteC, 1))),
        entry(dot(siteB, 2), at: 260, .text("未化解"), seen: vv(dot(siteA, 1), dot(siteB, 1), dot(siteC, 1))),
        entry(dot(siteA, 2), at: 300, .text("已化解"), seen: vv(dot(siteA, 1), dot(siteB, 1))),
    ]

    @Test func permutationHelperYieldsEveryOrderOnce() {
        let all = permutations([1, 2, 3, 4, 5])
        #expect(all.count == 120)
        #expect(Set(all.map { $0.map(String.init).joined() }).count == 120)
    }

    @Test func mergeIsIndependentOfArrivalOrderForEveryPermutation() {
        let expectedDots = [dot(siteA, 2), dot(siteB, 2), dot(siteC, 2)]  // winner first: 300, 260, 250
        var first: FieldRegister?
        let orders = permutations(Array(Self.scenario.indices))
        #expect(orders.count == 720)
        for order in orders {
            var r = FieldRegister()
            for i in order { r.merge(Self.scenario[i]) }
            #expect(r.entries.map(\.dot) == expectedDots, "order \(order)")
            #expect(r.value == .text("已化解"), "order \(order)")
            #expect(r.isConflict, "order \(order)")
            if let first { #expect(r == first, "order \(order)") } else { first = r }
        }
        // values first disagree when B:2 (未化解, 260) joins C:2 (已化解, 250)
        if let first {
            #expect(RowConflict(field: "status", kind: .concurrentValues, entries: first.entries).openedAt == hlc(260))
        }
    }

    @Test func redeliveryInAnyOrderChangesNothing() {
        var once = FieldRegister()
        for e in Self.scenario { once.merge(e) }
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            var r = FieldRegister()
            let deliveries = (Self.scenario + Self.scenario + Self.scenario).shuffled(using: &rng)
            for e in deliveries { r.merge(e) }
            #expect(r == once, "seed \(seed)")
        }
    }

    /// Sites write and exchange writes at random, each write carrying the context its site's
    /// register gives (as RowState.writes does). Then every write, delivered in random orders
    /// with repeats, must leave exactly the writes no other write had seen.
    @Test func simulatedWritersConvergeToTheWritesNobodySaw() {
        var seedsWithSiblings = 0, seedsWithReplacedWrites = 0
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            let sites = [siteA, siteB, siteC, SiteID(raw: 0xFFFF_0000_0000_0001)]
            var counters = [Int64](repeating: 0, count: sites.count)
            var local = [FieldRegister](repeating: FieldRegister(), count: sites.count)
            var writes: [RegisterEntry] = []
            let values: [FieldValue] = [.text("受理"), .text("已化解"), .integer(1), .null]
            for _ in 0..<Int(8 + rng.next() % 20) {
                let s = Int(rng.next() % UInt64(sites.count))
                if writes.isEmpty || rng.next() % 2 == 0 {
                    counters[s] += 1 + Int64(rng.next() % 3)  // a site's counter also counts its other edits
                    let w = RegisterEntry(
                        dot: dot(sites[s], counters[s]), hlc: hlc(1000 + Int64(rng.next() % 30), UInt16(rng.next() % 2)),
                        context: local[s].context, value: values[Int(rng.next() % 4)])
                    #expect(local[s].merge(w) != .duplicate, "seed \(seed)")
                    writes.append(w)
                } else {
                    for w in writes.shuffled(using: &rng) where rng.next() % 2 == 0 { local[s].merge(w) }
                }
            }
            // The spec's characterisation, computed directly.
            let survivors = writes.filter { w in !writes.contains { $0.dot != w.dot && $0.context.covers(w.dot) } }
            if survivors.count > 1 { seedsWithSiblings += 1 }
            if survivors.count < writes.count { seedsWithReplacedWrites += 1 }
            let expected = survivors.sorted {
                ($0.hlc, $0.dot.site.raw, $0.dot.counter) > ($1.hlc, $1.dot.site.raw, $1.dot.counter)
            }
            var reference: FieldRegister?
            for round in 0..<25 {
                var deliveries = writes.shuffled(using: &rng)
                deliveries += (0..<Int(rng.next() % 5)).compactMap { _ in writes.randomElement(using: &rng) }
                deliveries.shuffle(using: &rng)
                var r = FieldRegister()
                for w in deliveries { r.merge(w) }
                #expect(r.entries.map(\.dot) == expected.map(\.dot), "seed \(seed) round \(round)")
                #expect(r.isConflict == (Set(expected.map(\.value)).count > 1), "seed \(seed) round \(round)")
                if let reference { #expect(r == reference, "seed \(seed) round \(round)") } else { reference = r }
            }
        }
        // the simulation must exercise both concurrency and replacement, or it proves little
        #expect(seedsWithSiblings >= propertySeeds.count / 4)
        #expect(seedsWithReplacedWrites >= propertySeeds.count / 2)
    }
}
