@testable import FieldSyncCore
import Testing

@Suite struct BundleFormatSpec {
    static let site = SiteID(hex: "9f3c2a1b4d5e6f70")!
    static let other = SiteID(hex: "0123456789abcdef")!

    func headerError(_ json: JSONValue) -> InputError? {
        do throws(InputError) {
            _ = try BundleFormat.decodeHeader(json)
            return nil
        } catch {
            return error
        }
    }

    static func header() throws -> JSONObject {
        try #require(JSONValue.parse(#"{"format":"fieldsync-bundle","version":2,"schema":1,"site":"9f3c2a1b4d5e6f70","siteName":"王芳的电脑","created":"2026-11-22T03:04:05.123Z","sites":{"0123456789abcdef":"村委会","9f3c2a1b4d5e6f70":"王芳的电脑"}}"#).objectValue)
    }

    @Test func headerLineHasTheProtocolsKeysInOrder() {
        let h = BundleHeader(site: Self.site, siteName: "王芳的电脑", created: 1_795_316_645_123,
                             sites: [Self.site: "王芳的电脑", Self.other: "村委会"])
        // sites are listed in site order; created is the ISO form of 2026-11-22T03:04:05.123Z
        #expect(BundleFormat.headerLine(h) == #"{"format":"fieldsync-bundle","version":2,"schema":1,"site":"9f3c2a1b4d5e6f70","siteName":"王芳的电脑","created":"2026-11-22T03:04:05.123Z","sites":{"0123456789abcdef":"村委会","9f3c2a1b4d5e6f70":"王芳的电脑"}}"#)
    }

    @Test func headerDecodesToWhatWasWritten() throws {
        let h = try BundleFormat.decodeHeader(.object(Self.header()))
        #expect(h == BundleHeader(site: Self.site, siteName: "王芳的电脑", created: 1_795_316_645_123,
                                  sites: [Self.site: "王芳的电脑", Self.other: "村委会"]))
        #expect(try BundleFormat.decodeHeader(JSONValue.parse(BundleFormat.headerLine(h))) == h)
    }

    @Test func headerOfAnUnknownVersionIsRefusedAndOfANewerSchemaRead() throws {
        var o = try Self.header()
        o["version"] = 3
        let v = try #require(headerError(.object(o)))
        #expect(v.location.contains("version"))
        // Version 1 bundles carry no signatures: refused with what to do.
        o["version"] = 1
        let v1 = try #require(headerError(.object(o)))
        #expect(v1.reason.contains("no signatures") && v1.reason.contains("export it again"))
        // A newer schema's bundle is read (its changes keep what this schema cannot read,
        // changeset.md §2.4); only a schema number past any real one is refused.
        o = try Self.header()
        o["schema"] = 2
        #expect(headerError(.object(o)) == nil)
        o["schema"] = .int(ChangeCodec.maxSchemaVersion + 1)
        let s = try #require(headerError(.object(o)))
        #expect(s.location.contains("schema") && s.reason.contains("at most"))
        o["schema"] = 0
        #expect(headerError(.object(o))?.location.contains("schema") == true)
    }

    @Test func headerWithoutTheFormatMarkerIsNotABundle() throws {
        var o = try Self.header()
        o["format"] = "fieldsync"
        #expect(headerError(.object(o))?.location == "line 1")
        #expect(headerError(["end": true, "changes": 0])?.location == "line 1")
        #expect(headerError("fieldsync-bundle")?.location == "line 1")
    }

    @Test func headerWithABadSiteOrTimeIsRefused() throws {
        var o = try Self.header()
        o["site"] = "9F3C2A1B4D5E6F70"
        #expect(headerError(.object(o))?.location.contains("site") == true)
        o = try Self.header()
        o["created"] = "2026-11-22 03:04:05"
        #expect(headerError(.object(o))?.location.contains("created") == true)
        o = try Self.header()
        o["sites"] = ["not-a-site": "x"]
        #expect(headerError(.object(o))?.location.contains("sites") == true)
    }

    @Test func trailerCarriesTheChangeCount() throws {
        #expect(BundleFormat.trailerLine(count: 3) == #"{"end":true,"changes":3}"#)
        #expect(BundleFormat.trailerCount(try JSONValue.parse(#"{"end":true,"changes":3}"#)) == 3)
        #expect(BundleFormat.trailerCount(try JSONValue.parse(#"{"end":true,"changes":0}"#)) == 0)
        #expect(BundleFormat.trailerCount(try JSONValue.parse(#"{"end":false,"changes":3}"#)) == nil)
        #expect(BundleFormat.trailerCount(try JSONValue.parse(#"{"end":true,"changes":-1}"#)) == nil)
        #expect(BundleFormat.trailerCount(try JSONValue.parse(#"{"end":true,"changes":"3"}"#)) == nil)
        #expect(BundleFormat.trailerCount(try JSONValue.parse(#"{"end":true}"#)) == nil)
        // a change line is not a trailer
        #expect(BundleFormat.trailerCount(try JSONValue.parse(ChangeCodecSpec.exampleText)) == nil)
    }
}
