// GitInfo.swift: the commit a run was made from, read straight from the repository's files (no `git`
// subprocess): `.git/HEAD` names a branch (`ref: refs/heads/main`) or holds a detached commit; a branch's commit
// is in its loose ref file or in `packed-refs`. A work tree made by `git worktree add` has a `.git` file
// (`gitdir: ...`) whose folder keeps HEAD, with the refs in the folder named by its `commondir` file.
// Refuses nothing: anything unreadable means "no commit known" (nil).

import Foundation

public struct GitInfo: Equatable {
    /// The 40-hex commit id.
    public let commit: String
    /// The branch name, or nil for a detached HEAD.
    public let branch: String?
    /// The repository's top folder (the one holding `.git`).
    public let root: String

    /// The repository that holds `path` (a file or folder), searching upward; nil when there is none or its
    /// HEAD does not resolve to a commit (a new repository without commits).
    public static func find(from path: String) -> GitInfo? {
        var dir = URL(fileURLWithPath: path).standardizedFileURL
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) || !isDir.boolValue {
            dir = dir.deletingLastPathComponent()
        }
        for _ in 0..<64 {
            let dotGit = dir.appendingPathComponent(".git").path
            if FileManager.default.fileExists(atPath: dotGit) { return read(dotGit: dotGit, root: dir.path) }
            let up = dir.deletingLastPathComponent()
            if up.path == dir.path { return nil }
            dir = up
        }
        return nil
    }

    static func text(_ path: String) -> String? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func isCommit(_ s: String) -> Bool {
        (s.count == 40 || s.count == 64) && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func read(dotGit: String, root: String) -> GitInfo? {
        var gitDir = dotGit
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: dotGit, isDirectory: &isDir)
        if !isDir.boolValue {
            // A work tree or submodule: `gitdir: <path>` (relative to the folder holding .git).
            guard let t = text(dotGit), t.hasPrefix("gitdir:") else { return nil }
            let p = t.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespaces)
            gitDir = p.hasPrefix("/") ? p : URL(fileURLWithPath: root).appendingPathComponent(p).standardizedFileURL.path
        }
        var common = gitDir
        if let c = text(gitDir + "/commondir") {
            common = c.hasPrefix("/") ? c : URL(fileURLWithPath: gitDir).appendingPathComponent(c).standardizedFileURL.path
        }
        guard let head = text(gitDir + "/HEAD") else { return nil }
        if isCommit(head) { return GitInfo(commit: head, branch: nil, root: root) }
        guard head.hasPrefix("ref:") else { return nil }
        let ref = head.dropFirst(4).trimmingCharacters(in: .whitespaces)
        guard !ref.contains(".."), let commit = resolve(ref, gitDir: gitDir, common: common) else { return nil }
        let branch = ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref
        return GitInfo(commit: commit, branch: branch, root: root)
    }

    /// A ref's commit from its loose file (in the work tree's folder, then the common one) or `packed-refs`.
    static func resolve(_ ref: String, gitDir: String, common: String) -> String? {
        for dir in [gitDir, common] {
            if let t = text(dir + "/" + ref), isCommit(t) { return t }
        }
        guard let packed = text(common + "/packed-refs") else { return nil }
        for line in packed.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("^") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[1] == ref, isCommit(String(parts[0])) { return String(parts[0]) }
        }
        return nil
    }
}
