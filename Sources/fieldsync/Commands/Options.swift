import ArgumentParser
import FieldSyncCore
import FieldSyncReplica
import Foundation

// MARK: - GlobalOptions

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The replica file (default: $FIELDSYNC_DB, else ~/.local/share/fieldsync/replica.sqlite).", valueName: "path"))
    var db: String?

    var path: String {
        if let db { return db }
        let env = ProcessInfo.processInfo.environment
        if let p = env["FIELDSYNC_DB"], !p.isEmpty { return p }
        let data = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((env["HOME"] ?? ".") + "/.local/share")
        return data + "/fieldsync/replica.sqlite"
    }

    func open() throws -> Replica { try Replica.open(path: path) }
}

// MARK: - Reading JSON arguments

/// Parses a `--json` argument: inline JSON, `@FILE`, or `-` for standard input.
func jsonArgument(_ text: String, option: String = "--json") throws -> JSONObject {
    var source = text
    if text == "-" {
        source = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    } else if text.hasPrefix("@") {
        guard let d = FileManager.default.contents(atPath: String(text.dropFirst())) else {
            throw ReplicaError.invalidInput(InputError(option, "无法读取文件 \(text.dropFirst()) (cannot read it)"))
        }
        guard UTF8Validation.firstInvalidOffset([UInt8](d)) == nil else {
            throw ReplicaError.invalidInput(InputError(option, "\(text.dropFirst()) 不是 UTF-8 文本 (not valid UTF-8)"))
        }
        source = String(decoding: d, as: UTF8.self)
    }
    do {
        guard case .object(let o) = try JSONValue.parse(source) else {
            throw ReplicaError.invalidInput(InputError(option, "应是一个 JSON 对象，如 {\"status\":\"已化解\"} (expected a JSON object)"))
        }
        return o
    } catch let e as JSONSyntaxError {
        throw ReplicaError.invalidInput(InputError(option, "不是有效的 JSON：\(e)；中文标点（如全角引号“”、逗号，）要换成英文的 \" 和 , (not valid JSON)"))
    }
}
