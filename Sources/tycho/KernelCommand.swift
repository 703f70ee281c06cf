// KernelCommand.swift: `tycho kernel -f CONNECTION_FILE` (what Jupyter runs) and `tycho kernel install
// [--user | --prefix P] [--name tycho] [--interrupt-mode signal|message]`, which writes the kernelspec
// (kernels/NAME/kernel.json under a Jupyter data folder) with this executable's absolute path.

import ArgumentParser
import Foundation
import TychoLua
import TychoText

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "The Jupyter kernel: tycho kernel -f CONNECTION_FILE (started by Jupyter), or tycho kernel install.",
        subcommands: [KernelInstall.self])

    @Option(name: .customShort("f"), help: ArgumentHelp("The connection file Jupyter wrote.", valueName: "file"))
    var connectionFile: String?

    func run() throws {
        guard let connectionFile else {
            reportError("kernel: -f CONNECTION_FILE is required (Jupyter passes it; `tycho kernel install` sets that up)")
            throw ExitCode(1)
        }
        let info: ConnectionInfo
        do { info = try ConnectionInfo.read(connectionFile) } catch {
            reportError("kernel: \(error)")
            throw ExitCode(1)
        }
        let capture = DescriptorCapture()
        let kernel: Kernel
        do { kernel = try Kernel(connection: info, capture: capture) } catch {
            capture.log("tycho kernel: \(error)")
            throw ExitCode(1)
        }
        kernel.run()
    }
}

struct KernelInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Write the kernelspec so Jupyter (JupyterLab, nbclient, jupyter_client) can start Tycho notebooks.",
        discussion: "--user (the default) writes under $JUPYTER_DATA_DIR or ~/.local/share/jupyter; --prefix P under P/share/jupyter (a venv's sys.prefix, or set JUPYTER_PATH=P/share/jupyter).")

    @Flag(help: "Install for the current user (the default).")
    var user = false

    @Option(help: "Install under PREFIX/share/jupyter/kernels.")
    var prefix: String?

    @Option(help: "The kernel's name (notebooks name it in metadata.kernelspec.name).")
    var name = "tycho"

    @Option(help: "How Jupyter interrupts a cell: signal (SIGINT) or message (interrupt_request on control).")
    var interruptMode = "signal"

    func validate() throws {
        guard ["signal", "message"].contains(interruptMode) else { throw ValidationError("--interrupt-mode is signal or message") }
        guard NotebookRunner.isLuaName(name.replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")) else {
            throw ValidationError("--name: letters, digits, -, _ and .")
        }
        if user && prefix != nil { throw ValidationError("--user or --prefix, not both") }
    }

    static func executablePath() -> String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    func run() throws {
        let base: String
        if let prefix {
            base = URL(fileURLWithPath: prefix).standardizedFileURL.path + "/share/jupyter"
        } else if let d = ProcessInfo.processInfo.environment["JUPYTER_DATA_DIR"], !d.isEmpty {
            base = d
        } else {
            base = NSHomeDirectory() + "/.local/share/jupyter"
        }
        let dir = base + "/kernels/" + name
        let spec: JSONValue = .object([
            ("argv", .array([KernelInstall.executablePath(), "kernel", "-f", "{connection_file}"].map { .string($0) })),
            ("display_name", .string(name == "tycho" ? "Tycho (Lua 5.4)" : "Tycho (Lua 5.4): \(name)")),
            ("env", .object([])), ("interrupt_mode", .string(interruptMode)), ("language", .string("lua")), ("metadata", .object([])),
        ])
        var text = ""
        NotebookJSON.write(spec, level: 0, into: &text)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try (text + "\n").write(toFile: dir + "/kernel.json", atomically: true, encoding: .utf8)
        } catch {
            reportError("kernel install: cannot write \(dir)/kernel.json: \(error)")
            throw ExitCode(1)
        }
        print("Installed kernelspec \(name) in \(dir)")
    }
}
