import FieldSyncCore
import Foundation
import Testing

/// Long notes are compared sentence by sentence.
@Suite struct TextDiffSpec {
    @Test func sentencesSplitAfterChinesePunctuationAndJoinBackExactly() {
        let t = "第一句。第二句！第三句？第四句；最后没有标点"
        let s = TextDiff.sentences(t)
        #expect(s == ["第一句。", "第二句！", "第三句？", "第四句；", "最后没有标点"])
        #expect(s.joined() == t)
        #expect(TextDiff.sentences("a\nb\r\nc").joined() == "a\nb\r\nc")
    }

    @Test func aChangedSentenceShowsAsRemovedThenAdded() {
        let d = TextDiff.diff("甲。乙。丙。", "甲。乙改。丙。")
        #expect(d == [.same("甲。"), .removed("乙。"), .added("乙改。"), .same("丙。")])
    }

    @Test func insertionsAndDeletionsKeepEverythingElse() {
        let d = TextDiff.diff("一。二。三。四。", "零。一。三。四。五。")
        #expect(d == [.added("零。"), .same("一。"), .removed("二。"), .same("三。"), .same("四。"), .added("五。")])
        // Applying the diff gives the new text; reading the old side gives the old.
        let newText = d.compactMap { if case .removed = $0 { return nil } else if case .same(let s) = $0 { return s } else if case .added(let s) = $0 { return s } else { return nil } }.joined()
        #expect(newText == "零。一。三。四。五。")
    }

    @Test func longUnchangedRunsAreFolded() {
        let base = (1...30).map { "第\($0)句。" }.joined()
        let edited = base.replacingOccurrences(of: "第15句。", with: "第十五句，改过了。")
        let lines = TextDiff.render(TextDiff.diff(base, edited))
        #expect(lines.contains("- 第15句。") && lines.contains("+ 第十五句，改过了。"))
        #expect(lines.filter { $0.contains("句未改动") }.count == 2)
        #expect(lines.count < 10)
    }
}
