import TychoLua
let s = try LuaState()
if let e = s.execute(CommandLine.arguments.dropFirst().joined(separator: " ")) { print(e) }
