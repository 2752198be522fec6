// MARK: - UTCTime

/// Converts between Unix milliseconds and calendar text, always in UTC unless an explicit
/// offset is given, and always saying which zone a shown time is in.
///
///     UTCTime.iso(1763784245123)                   // "2025-11-22T04:04:05.123Z"
///     UTCTime.human(1763784245123)                 // "2025-11-22 04:04:05 UTC"
///     UTCTime.human(1763784245123, offsetMinutes: 480)   // "2025-11-22 12:04:05 UTC+08:00"
public enum UTCTime {
    /// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    public static func civil(days z0: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days since 1970-01-01 of a calendar date.
    public static func days(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func parts(_ ms: Int64) -> (Int64, Int, Int, Int, Int, Int, Int) {
        let (days, rem) = ms.floorDivided(by: 86_400_000)
        let (y, m, d) = civil(days: days)
        let secs = Int(rem / 1000)
        return (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, Int(rem % 1000))
    }

    private static func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }

    /// `2026-11-22T03:04:05.123Z`
    public static func iso(_ ms: Int64) -> String {
        let (y, m, d, h, mi, s, f) = parts(ms)
        return "\(pad(Int(y), 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)).\(pad(f, 3))Z"
    }

    /// `2026-11-22 03:04:05 UTC`, or in a fixed offset with the offset named.
    public static func human(_ ms: Int64, offsetMinutes: Int = 0) -> String {
        let (y, m, d, h, mi, s, _) = parts(ms + Int64(offsetMinutes) * 60_000)
        return "\(pad(Int(y), 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)) \(zoneName(offsetMinutes))"
    }

    public static func zoneName(_ offsetMinutes: Int) -> String {
        if offsetMinutes == 0 { return "UTC" }
        let sign = offsetMinutes < 0 ? "-" : "+"
        let a = abs(offsetMinutes)
        return "UTC\(sign)\(pad(a / 60, 2)):\(pad(a % 60, 2))"
    }

    /// Parses `2026-11-22T03:04:05Z`, `2026-11-22T03:04:05.123Z` or a date `2026-11-22` (midnight UTC).
    public static func parseISO(_ s: String) -> Int64? {
        let u = Array(s.utf8)
        func num(_ a: Int, _ n: Int) -> Int? {
            guard a + n <= u.count else { return nil }
            var v = 0
            for k in a..<(a + n) {
                guard (0x30...0x39).contains(u[k]) else { return nil }
                v = v * 10 + Int(u[k] - 0x30)
            }
            return v
        }
        guard u.count >= 10, let y = num(0, 4), u[4] == 0x2D, let mo = num(5, 2), u[7] == 0x2D, let d = num(8, 2),
            (1...12).contains(mo), (1...DateCheck.daysIn(year: y, month: mo)).contains(d)
        else { return nil }
        var ms = days(year: Int64(y), month: mo, day: d) * 86_400_000
        if u.count == 10 { return ms }
        guard u.count >= 20, u[10] == 0x54, let h = num(11, 2), u[13] == 0x3A, let mi = num(14, 2), u[16] == 0x3A,
            let sec = num(17, 2), h < 24, mi < 60, sec < 60
        else { return nil }
        ms += Int64(h * 3_600_000 + mi * 60_000 + sec * 1000)
        var k = 19
        if u[k] == 0x2E {
            guard let f = num(20, 3) else { return nil }
            ms += Int64(f)
            k = 23
        }
        guard k == u.count - 1, u[k] == 0x5A else { return nil }
        return ms
    }

    /// Parses a fixed offset such as `+08:00`, `-05:30` or `UTC`.
    public static func parseOffset(_ s: String) -> Int? {
        if s == "UTC" || s == "Z" || s == "+00:00" { return 0 }
        let u = Array(s.utf8)
        guard u.count == 6, u[0] == 0x2B || u[0] == 0x2D, u[3] == 0x3A,
            [1, 2, 4, 5].allSatisfy({ (0x30...0x39).contains(u[$0]) }),
            let h = Int(String(decoding: u[1...2], as: UTF8.self)), let m = Int(String(decoding: u[4...5], as: UTF8.self)),
            h <= 14, m < 60
        else { return nil }
        return (u[0] == 0x2D ? -1 : 1) * (h * 60 + m)
    }
}

extension Int64 {
    func floorDivided(by d: Int64) -> (Int64, Int64) {
        var q = self / d
        var r = self % d
        if r < 0 { q -= 1; r += d }
        return (q, r)
    }
}
