@testable import FieldSyncCore
import Testing

@Suite struct VersionVectorSpec {
    @Test func emptyVectorCoversNothing() {
        let v = VersionVector()
        #expect(v.isEmpty)
        #expect(!v.covers(dot(siteA, 1)))
        #expect(v[siteA] == 0)
    }

    @Test func coversEveryCounterUpToItsEntryForThatSiteOnly() {
        let v = vv(dot(siteA, 5))
        #expect(v.covers(dot(siteA, 1)))
        #expect(v.covers(dot(siteA, 5)))
        #expect(!v.covers(dot(siteA, 6)))
        #expect(!v.covers(dot(siteB, 1)))
    }

    @Test func includeKeepsTheLargerCounter() {
        var v = VersionVector()
        v.include(dot(siteA, 7))
        v.include(dot(siteA, 3))
        #expect(v[siteA] == 7)
        v.include(dot(siteA, 9))
        #expect(v[siteA] == 9)
        #expect(v.count == 1)
    }

    @Test func entriesAreSortedBySiteWithOnePerSite() {
        let v = VersionVector([(siteC, 2), (siteA, 4), (siteB, 1), (siteA, 9), (siteC, 1)] as [(SiteID, Int64)])
        #expect(v.entries.map(\.site) == [siteA, siteB, siteC])
        #expect(v.entries.map(\.counter) == [9, 1, 2])
    }

    @Test func equalityAndHashIgnoreInsertionOrder() {
        let x = vv(dot(siteA, 1), dot(siteB, 2), dot(siteC, 3))
        let y = vv(dot(siteC, 3), dot(siteA, 1), dot(siteB, 2), dot(siteB, 1))
        #expect(x == y)
        #expect(Set([x, y]).count == 1)
        #expect(x != vv(dot(siteA, 1), dot(siteB, 2)))
        #expect(x != vv(dot(siteA, 1), dot(siteB, 2), dot(siteC, 4)))
    }

    @Test func unionTakesTheMaximumPerSite() {
        var u = vv(dot(siteA, 3), dot(siteB, 1))
        u.formUnion(vv(dot(siteB, 4), dot(siteC, 2), dot(siteA, 1)))
        #expect(u == vv(dot(siteA, 3), dot(siteB, 4), dot(siteC, 2)))
    }

    @Test func unionIsCommutativeAssociativeIdempotentAndCoversWhatEitherCovers() {
        let sites = [siteA, siteB, siteC, SiteID(raw: 1), SiteID(raw: UInt64.max)]
        func random(_ rng: inout SplitMix64) -> VersionVector {
            VersionVector((0..<Int(rng.next() % 5)).map { _ in (sites[Int(rng.next() % 5)], Int64(1 + rng.next() % 9)) })
        }
        func union(_ a: VersionVector, _ b: VersionVector) -> VersionVector {
            var u = a
            u.formUnion(b)
            return u
        }
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            for _ in 0..<50 {
                let a = random(&rng), b = random(&rng), c = random(&rng)
                #expect(union(a, b) == union(b, a), "seed \(seed)")
                #expect(union(union(a, b), c) == union(a, union(b, c)), "seed \(seed)")
                #expect(union(a, a) == a, "seed \(seed)")
                let ab = union(a, b)
                for s in sites {
                    for n in Int64(1)...10 {
                        let d = dot(s, n)
                        #expect(ab.covers(d) == (a.covers(d) || b.covers(d)), "seed \(seed): \(d)")
                    }
                }
                // sorted by site, one entry per site, counters ≥ 1
                #expect(zip(ab.entries, ab.entries.dropFirst()).allSatisfy { $0.site < $1.site }, "seed \(seed)")
                #expect(ab.entries.allSatisfy { $0.counter >= 1 }, "seed \(seed)")
            }
        }
    }
}
