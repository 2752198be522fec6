@testable import FieldSyncCore
import Testing

@Suite struct UTCTimeSpec {
    static let day: Int64 = 86_400_000

    /// Gregorian leap years, written out independently of the code under test.
    static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
    static func monthLength(_ y: Int64, _ m: Int) -> Int {
        [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    }

    // MARK: Known instants

    @Test func epochZeroIsMidnightJanuaryFirst1970() {
        #expect(UTCTime.iso(0) == "1970-01-01T00:00:00.000Z")
        #expect(UTCTime.human(0) == "1970-01-01 00:00:00 UTC")
        #expect(UTCTime.parseISO("1970-01-01T00:00:00.000Z") == 0)
        #expect(UTCTime.parseISO("1970-01-01T00:00:00Z") == 0)
        #expect(UTCTime.parseISO("1970-01-01") == 0)
    }

    @Test func oneMillisecondBeforeTheEpochIsTheLastOf1969() {
        #expect(UTCTime.iso(-1) == "1969-12-31T23:59:59.999Z")
        #expect(UTCTime.parseISO("1969-12-31T23:59:59.999Z") == -1)
    }

    @Test func knownInstantsHaveTheirCalendarText() {
        // 2000-01-01 is 10957 days after 1970-01-01: 30 years of 365 days plus 7 leap days.
        #expect(UTCTime.iso(10_957 * Self.day) == "2000-01-01T00:00:00.000Z")
        // 1763784245123 ms = 20414 days + 4 h 4 min 5.123 s; day 20414 is 2025-11-22.
        #expect(UTCTime.iso(1_763_784_245_123) == "2025-11-22T04:04:05.123Z")
        // the bundle header example of the protocol
        #expect(UTCTime.parseISO("2026-11-22T03:04:05.123Z") == 1_795_316_645_123)
        // 1900-01-01 is 25567 days before the epoch (70 years, 17 leap days)
        #expect(UTCTime.parseISO("1900-01-01") == -25_567 * Self.day)
    }

    @Test func february29Of2000Exists() {
        // 2000 is divisible by 400: a leap year. 2000-02-29 is day 10957 + 31 + 28.
        #expect(UTCTime.parseISO("2000-02-29") == (10_957 + 59) * Self.day)
        #expect(UTCTime.iso((10_957 + 59) * Self.day) == "2000-02-29T00:00:00.000Z")
        #expect(UTCTime.iso((10_957 + 60) * Self.day) == "2000-03-01T00:00:00.000Z")
        #expect(DateCheck.problem("2000-02-29") == nil)
    }

    @Test func february29Of1900DoesNotExist() {
        // 1900 is divisible by 100 but not by 400: not a leap year.
        #expect(DateCheck.problem("1900-02-29") != nil)
        #expect(UTCTime.parseISO("1900-02-29") == nil)
        #expect(DateCheck.problem("2100-02-29") != nil)
        #expect(DateCheck.problem("2024-02-29") == nil)
        #expect(DateCheck.problem("2023-02-29") != nil)
    }

    // MARK: Days and civil dates

    @Test func daysAndCivilAreInversesAndWalkTheCalendarOneDayAtATime() {
        var (y, m, d): (Int64, Int, Int) = (1900, 1, 1)
        var n = UTCTime.days(year: 1900, month: 1, day: 1)
        #expect(n == -25_567)
        while y <= 2200 {
            let c = UTCTime.civil(days: n)
            if c.year != y || c.month != m || c.day != d {
                Issue.record("day \(n): civil gave \(c), expected \(y)-\(m)-\(d)")
                return
            }
            if UTCTime.days(year: y, month: m, day: d) != n {
                Issue.record("days(\(y)-\(m)-\(d)) is not \(n)")
                return
            }
            n += 1
            d += 1
            if d > Self.monthLength(y, m) { d = 1; m += 1 }
            if m > 12 { m = 1; y += 1 }
        }
        // 301 years from 1900-01-01 to 2201-01-01: 301 × 365 + 73 leap days (1904…2196, less 2100)
        #expect(n - UTCTime.days(year: 1900, month: 1, day: 1) == 301 * 365 + 73)
    }

    // MARK: Parsing

    @Test(arguments: [
        "2026-11-22T24:00:00Z", "2026-11-22T23:60:00Z", "2026-11-22T23:59:60Z",
        "2026-11-22T03:04:05", "2026-11-22T03:04:05+08:00", "2026-11-22T03:04:05.12Z", "2026-11-22T03:04:05.1234Z",
        "2026-11-22 03:04:05Z", "2026-11-22t03:04:05z", "2026-13-01", "2026-00-10", "2026-11-31", "2026-11-00",
        "2026-1-22", "26-11-22", "2026/11/22", "2026-11-22T", "2026-11-22Z", "", "2026-11-22T03:04:05.Z",
        "2026-11-22T03:04:05.123Zx", "2026-11-22T3:04:05Z", "+026-11-22",
    ])
    func malformedTimesAreRefused(text: String) {
        #expect(UTCTime.parseISO(text) == nil, "\(text) was accepted")
    }

    @Test func isoAndParseISORoundTripOverManyInstants() {
        let lo = UTCTime.days(year: 1900, month: 1, day: 1) * Self.day
        let hi = UTCTime.days(year: 2201, month: 1, day: 1) * Self.day
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            for _ in 0..<500 {
                let ms = lo + Int64(rng.next() % UInt64(hi - lo))
                let text = UTCTime.iso(ms)
                #expect(UTCTime.parseISO(text) == ms, "seed \(seed): \(ms) → \(text)")
                #expect(text.utf8.count == 24, "seed \(seed): \(text)")
            }
        }
    }

    @Test func parseISOThenIsoGivesBackTheText() {
        for seed in propertySeeds {
            var rng = SplitMix64(seed: seed)
            for _ in 0..<300 {
                let y = Int64(1900 + rng.next() % 301), m = Int(1 + rng.next() % 12)
                let d = Int(1 + rng.next() % UInt64(Self.monthLength(y, m)))
                let (h, mi, s, f) = (Int(rng.next() % 24), Int(rng.next() % 60), Int(rng.next() % 60), Int(rng.next() % 1000))
                func p(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: n - String(v).count) + String(v) }
                let text = "\(y)-\(p(m, 2))-\(p(d, 2))T\(p(h, 2)):\(p(mi, 2)):\(p(s, 2)).\(p(f, 3))Z"
                guard let ms = UTCTime.parseISO(text) else {
                    Issue.record("seed \(seed): \(text) refused")
                    continue
                }
                #expect(UTCTime.iso(ms) == text, "seed \(seed)")
                // and it is that many milliseconds after midnight of its day
                let midnight = UTCTime.parseISO(String(text.prefix(10)))
                #expect(midnight.map { ms - $0 } == Int64(((h * 60 + mi) * 60 + s) * 1000 + f), "seed \(seed): \(text)")
            }
        }
    }

    // MARK: Human display

    @Test func humanTimeNamesItsZone() {
        #expect(UTCTime.human(1_763_784_245_123) == "2025-11-22 04:04:05 UTC")
        #expect(UTCTime.human(1_763_784_245_123, offsetMinutes: 480) == "2025-11-22 12:04:05 UTC+08:00")
        #expect(UTCTime.human(0, offsetMinutes: 480) == "1970-01-01 08:00:00 UTC+08:00")
        #expect(UTCTime.human(0, offsetMinutes: -330) == "1969-12-31 18:30:00 UTC-05:30")
        // 20:00 UTC in Beijing is 04:00 the next day
        #expect(UTCTime.human(20 * 3_600_000, offsetMinutes: 480) == "1970-01-02 04:00:00 UTC+08:00")
    }

    @Test func zoneNamesAreSignedHoursAndMinutes() {
        #expect(UTCTime.zoneName(0) == "UTC")
        #expect(UTCTime.zoneName(480) == "UTC+08:00")
        #expect(UTCTime.zoneName(-570) == "UTC-09:30")
        #expect(UTCTime.zoneName(345) == "UTC+05:45")
    }

    @Test func offsetsParseToMinutes() {
        #expect(UTCTime.parseOffset("+08:00") == 480)
        #expect(UTCTime.parseOffset("-05:30") == -330)
        #expect(UTCTime.parseOffset("+05:45") == 345)
        #expect(UTCTime.parseOffset("+14:00") == 840)
        #expect(UTCTime.parseOffset("UTC") == 0)
        #expect(UTCTime.parseOffset("Z") == 0)
        #expect(UTCTime.parseOffset("+00:00") == 0)
    }

    @Test(arguments: ["+8:00", "+0800", "08:00", "+15:00", "+08:60", "+08:0a", "utc", "", "+08:00 ", "UTC+08:00",
                      "+-1:00", "-+8:00", "+08:+5", "+08:-5"])
    func malformedOffsetsAreRefused(text: String) {
        #expect(UTCTime.parseOffset(text) == nil, "\(text) parsed as \(String(describing: UTCTime.parseOffset(text)))")
    }
}
