@testable import FieldSyncCore
import Testing

@Suite struct HybridTimestampSpec {
    @Test func readingsCompareByMillisThenCounter() {
        #expect(hlc(1000, 65535) < hlc(1001, 0))
        #expect(hlc(1000, 1) < hlc(1000, 2))
        #expect(!(hlc(1000, 2) < hlc(1000, 2)))
        #expect(hlc(5, 0) > hlc(4, 9))
    }

    @Test func wireTextIsMillisDashCounter() {
        #expect(hlc(1_763_784_245_123, 0).description == "1763784245123-0")
        #expect(HybridTimestamp("1763784245123-7") == hlc(1_763_784_245_123, 7))
    }

    @Test func wireTextAcceptsExactLimits() {
        // millis up to 2^47 - 1 = 140737488355327, counter up to 65535
        #expect(HybridTimestamp("140737488355327-65535") == hlc(140_737_488_355_327, 65535))
        #expect(HybridTimestamp("0-0") == hlc(0, 0))
    }

    @Test(arguments: ["140737488355328-0", "1-65536", "-1-0", "1--1", "1-", "-5", "1", "1-0-0", "+1-0", "1-+0", " 1-0", "1-0 ", "1.5-0", "a-0", ""])
    func malformedWireTextIsRefused(text: String) {
        #expect(HybridTimestamp(text) == nil, "\(text) was accepted")
    }

    @Test func packedFormIsMillisShiftedSixteenPlusCounter() {
        #expect(hlc(1, 2).packed == 65_538)
        #expect(hlc(0, 65535).packed == 65_535)
        #expect(HybridTimestamp(packed: 65_538) == hlc(1, 2))
    }

    @Test func packedOrderEqualsReadingOrder() {
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            for _ in 0..<200 {
                let a = hlc(Int64(rng.next() % 2000), UInt16(truncatingIfNeeded: rng.next() % 4 == 0 ? 65535 : rng.next()))
                let b = hlc(Int64(rng.next() % 2000), UInt16(truncatingIfNeeded: rng.next()))
                #expect((a < b) == (a.packed < b.packed), "seed \(seed): \(a) \(b)")
                #expect(HybridTimestamp(packed: a.packed) == a, "seed \(seed)")
                #expect(HybridTimestamp(a.description) == a, "seed \(seed)")
            }
        }
    }
}

@Suite struct HybridLogicalClockSpec {
    let hour: Int64 = 3_600_000

    @Test func defaultDriftBoundIsOneHour() {
        #expect(HybridLogicalClock.defaultMaxDrift == 3_600_000)
        #expect(HybridLogicalClock().maxDrift == 3_600_000)
    }

    @Test func tickTakesTheWallClockWhenItIsAhead() {
        var c = HybridLogicalClock(last: hlc(1000, 7))
        #expect(c.tick(wall: 2000) == hlc(2000, 0))
        #expect(c.last == hlc(2000, 0))
    }

    @Test func tickCountsWithinOneMillisecond() {
        var c = HybridLogicalClock()
        #expect(c.tick(wall: 5000) == hlc(5000, 0))
        #expect(c.tick(wall: 5000) == hlc(5000, 1))
        #expect(c.tick(wall: 5000) == hlc(5000, 2))
    }

    @Test func tickNeverGoesBackWhenTheWallClockDoes() {
        var c = HybridLogicalClock(last: hlc(10_000, 3))
        #expect(c.tick(wall: 9_000) == hlc(10_000, 4))
        #expect(c.tick(wall: 0) == hlc(10_000, 5))
        #expect(c.tick(wall: -50) == hlc(10_000, 6))
    }

    @Test func counterCarriesIntoMillisAt65535() {
        var c = HybridLogicalClock(last: hlc(1000, 65534))
        #expect(c.tick(wall: 1000) == hlc(1000, 65535))
        #expect(c.tick(wall: 1000) == hlc(1001, 0))
        #expect(c.tick(wall: 1000) == hlc(1001, 1))
        #expect(c.tick(wall: 1001) == hlc(1001, 2))
        #expect(c.tick(wall: 1002) == hlc(1002, 0))
    }

    @Test func ticksAreStrictlyIncreasingWhateverTheWallClockDoes() {
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            var c = HybridLogicalClock(last: hlc(1_000_000, UInt16(rng.next() % 65536)))
            var previous = c.last
            for step in 0..<3000 {
                // mostly standing still or going backwards, sometimes jumping ahead
                let wall = 1_000_000 + Int64(rng.next() % 40) - 20
                if rng.next() % 50 == 0 {
                    c.observe(hlc(wall + Int64(rng.next() % 100), UInt16(rng.next() % 65536)), wall: wall)
                    #expect(c.last >= previous, "seed \(seed) step \(step)")
                    previous = c.last
                    continue
                }
                let t = c.tick(wall: wall)
                #expect(t > previous, "seed \(seed) step \(step): \(t) after \(previous)")
                #expect(t == c.last, "seed \(seed)")
                previous = t
            }
        }
    }

    @Test func observeWithinDriftAdvancesToTheRemoteReading() {
        var c = HybridLogicalClock(last: hlc(1000, 0))
        #expect(c.observe(hlc(1500, 7), wall: 1200) == nil)
        #expect(c.last == hlc(1500, 7))
        // the next local event comes after what was observed
        #expect(c.tick(wall: 1200) == hlc(1500, 8))
    }

    @Test func observeOfAnOlderReadingKeepsTheClock() {
        var c = HybridLogicalClock(last: hlc(5000, 3))
        #expect(c.observe(hlc(4000, 9), wall: 5000) == nil)
        #expect(c.observe(hlc(5000, 2), wall: 5000) == nil)
        #expect(c.last == hlc(5000, 3))
    }

    @Test func observeExactlyAtTheDriftBoundIsWithinBounds() {
        let wall: Int64 = 1_763_784_000_000
        var c = HybridLogicalClock(last: hlc(wall, 0))
        #expect(c.observe(hlc(wall + hour, 42), wall: wall) == nil)
        #expect(c.last == hlc(wall + hour, 42))
    }

    @Test func observeBeyondDriftIsCappedAtWallPlusDriftAndReportsHowFarAhead() {
        let wall: Int64 = 1_763_784_000_000
        let year: Int64 = 365 * 86_400_000
        var c = HybridLogicalClock(last: hlc(wall - 10, 0))
        let ahead = c.observe(hlc(wall + year, 9), wall: wall)
        #expect(ahead == year)
        #expect(c.last == hlc(wall + hour, 0))
        #expect(c.tick(wall: wall) == hlc(wall + hour, 1))
    }

    @Test func observeOneMillisecondBeyondDriftIsCapped() {
        let wall: Int64 = 2_000_000_000
        var c = HybridLogicalClock(last: hlc(wall, 0))
        let ahead = c.observe(hlc(wall + hour + 1, 0), wall: wall)
        #expect(ahead == hour + 1)
        #expect(c.last == hlc(wall + hour, 0))
    }

    @Test func observeBeyondDriftNeverMovesTheClockBack() {
        let wall: Int64 = 2_000_000_000
        var c = HybridLogicalClock(last: hlc(wall + 2 * hour, 5))
        #expect(c.observe(hlc(wall + 10 * hour, 0), wall: wall) == 10 * hour)
        #expect(c.last == hlc(wall + 2 * hour, 5))
    }

    @Test func aCustomDriftBoundIsHonoured() {
        var c = HybridLogicalClock(maxDrift: 100)
        #expect(c.observe(hlc(1100, 3), wall: 1000) == nil)
        #expect(c.last == hlc(1100, 3))
        #expect(c.observe(hlc(1201, 0), wall: 1000) == 201)
        #expect(c.last == hlc(1100, 3))
    }
}
