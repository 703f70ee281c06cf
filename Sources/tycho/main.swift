// main.swift: entry point of the `tycho` executable.
import Foundation

setvbuf(stdout, nil, _IOLBF, 0)
let argv = Array(CommandLine.arguments.dropFirst())
if argv.first == "help" {
    exit(helpCommand(Array(argv.dropFirst())))
}
Tycho.main()
