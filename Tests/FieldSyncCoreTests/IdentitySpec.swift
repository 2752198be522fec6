@testable import FieldSyncCore
import Testing

@Suite struct IdentitySpec {
    @Test func siteIdsAreSixteenLowercaseHexDigits() {
        #expect(SiteID(hex: "9f3c2a1b4d5e6f70")?.raw == 0x9F3C_2A1B_4D5E_6F70)
        #expect(SiteID(raw: 0xAB).hex == "00000000000000ab")
        #expect(SiteID(raw: UInt64.max).hex == "ffffffffffffffff")
        for bad in ["9F3C2A1B4D5E6F70", "9f3c2a1b4d5e6f7", "9f3c2a1b4d5e6f700", "9f3c2a1b4d5e6f7g", "+f3c2a1b4d5e6f70", "", "0x3c2a1b4d5e6f70"] {
            #expect(SiteID(hex: bad) == nil, "\(bad)")
        }
    }

    @Test func siteOrderIsNumericAndEqualsHexTextOrder() {
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            for _ in 0..<200 {
                let a = SiteID(raw: rng.next() >> (rng.next() % 64)), b = SiteID(raw: rng.next() >> (rng.next() % 64))
                #expect((a < b) == (a.raw < b.raw), "seed \(seed)")
                #expect((a < b) == (a.hex < b.hex), "seed \(seed): \(a) \(b)")
                #expect(SiteID(hex: a.hex) == a, "seed \(seed)")
            }
        }
    }

    @Test func randomSiteIdsAreNeverZero() {
        for _ in 0..<1000 { #expect(SiteID.random().raw != 0) }
    }

    @Test func changeIdsReadAndWriteSiteColonCounter() {
        let id = ChangeID("9f3c2a1b4d5e6f70:42")
        #expect(id?.site.hex == "9f3c2a1b4d5e6f70")
        #expect(id?.counter == 42)
        #expect(id?.description == "9f3c2a1b4d5e6f70:42")
        // Counters run to 2^53 − 1 (exact in any JSON reader); beyond is no id at all.
        #expect(ChangeID("0000000000000001:9007199254740991")?.counter == ChangeID.maxCounter)
        #expect(ChangeID("0000000000000001:9007199254740992") == nil)
        #expect(ChangeID("0000000000000001:9223372036854775807") == nil)
        #expect(ChangeID("0000000000000001:99999999999999999999999") == nil)
    }

    @Test func changeIdsOrderBySiteThenCounter() {
        #expect(dot(siteA, 9) < dot(siteB, 1))
        #expect(dot(siteA, 2) < dot(siteA, 10))  // numerically, not as text
        #expect([dot(siteB, 1), dot(siteA, 10), dot(siteA, 2)].sorted() == [dot(siteA, 2), dot(siteA, 10), dot(siteB, 1)])
    }

    @Test func recordIdsAreTheirRegionThenThirtyTwoHexDigitsStartingWithTheTime() {
        let ms: Int64 = 0x0123_4567_89AB
        let id = RecordID.make(kind: .dispute, region: "520221105201", nowMs: ms)
        #expect(id.utf8.count == 12 + 1 + 32)
        #expect(id.hasPrefix("520221105201-0123456789ab"))
        #expect(RecordID.problem(id, kind: .dispute) == nil)
        #expect(RecordID.region(of: id) == "520221105201")
        #expect(RecordID.shortPart(id).hasPrefix("0123456789ab"))
        #expect(RecordID.make(kind: .visit, region: "520221105201", nowMs: ms) != id)
        // later ids of one place sort after earlier ones
        #expect(RecordID.make(kind: .visit, region: "520221105201", nowMs: ms + 1) > id)
        // a cadre may be posted to a township (9 digits)
        #expect(RecordID.problem(RecordID.make(kind: .cadre, region: "520221105", nowMs: ms), kind: .cadre) == nil)
    }

    @Test func recordIdProblemsAreExplained() {
        #expect(RecordID.problem("520221105201-0123456789ABCDEF0123456789abcdef", kind: .visit) != nil)
        #expect(RecordID.problem("520221105201-0123456789abcdef0123456789abcde", kind: .visit) != nil)
        #expect(RecordID.problem("0123456789abcdef0123456789abcdef", kind: .visit) != nil)  // no region
        #expect(RecordID.problem("520221105-0123456789abcdef0123456789abcdef", kind: .visit) != nil)  // a visit's place is a village
        #expect(RecordID.problem("520221105-0123456789abcdef0123456789abcdef", kind: .cadre) == nil)
        #expect(RecordID.problem("520221105201", kind: .visit) != nil)
        #expect(RecordID.problem("520221105201", kind: .region) == nil)
        #expect(RecordID.problem("0123456789abcdef0123456789abcdef", kind: .region) != nil)
    }

    @Test func regionLevelsFollowTheCodeLength() {
        #expect(RegionCode.levelLabel("520221") == "县(区)")
        #expect(RegionCode.levelLabel("520221105") == "乡镇(街道)")
        #expect(RegionCode.levelLabel("520221105201") == "村(社区)")
    }

    @Test func kindsAreFoundByKeyOrChineseLabel() {
        #expect(RecordKind(named: "dispute") == .dispute)
        #expect(RecordKind(named: "矛盾纠纷") == .dispute)
        #expect(RecordKind(named: "走访记录") == .visit)
        #expect(RecordKind(named: "meeting") == nil)
        #expect(RecordKind.dispute.spec.field(keyOrLabel: "办理状态")?.name == "status")
    }
}
