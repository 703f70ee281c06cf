// GraderFormula.swift: the `calculate_output` of OpenAI's multi grader: an arithmetic expression over the
// sub-graders' scores by name, e.g. "0.5 * a + 0.5 * b" or "min(1, max(0, a - 0.1 * b))".
//
// Grammar (precedence low to high; `^` is right-associative and binds tighter than unary minus, so -2^2 = -4):
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/') unary)*
//   unary   := ('-' | '+') unary | power
//   power   := primary ('^' unary)?
//   primary := number | name | function '(' expr (',' expr)* ')' | '(' expr ')'
// Functions: min, max (one or more arguments), abs, floor, ceil, exp, sqrt, log (natural; one argument).
//
// It is parsed once, when the grader is made (an unknown name or function, a wrong argument count or a syntax
// error is an error then), and evaluated without any code execution. Division by zero, sqrt of a negative, log
// of a non-positive number and a non-finite result are other_error results for that sample.

import Foundation

public struct GraderFormula: CustomStringConvertible {
    indirect enum Node {
        case number(Double)
        case name(String)
        case negate(Node)
        case binary(Character, Node, Node)
        case call(String, [Node])
    }

    public let source: String
    let root: Node
    /// The grader names the formula reads, in order of first use.
    public let names: [String]

    static let unary: [String: (Double) -> Double] = [
        "abs": { Swift.abs($0) }, "floor": { $0.rounded(.down) }, "ceil": { $0.rounded(.up) },
        "exp": { Foundation.exp($0) }, "sqrt": { $0.squareRoot() }, "log": { Foundation.log($0) },
    ]
    public static let functionNames = ["abs", "ceil", "exp", "floor", "log", "max", "min", "sqrt"]

    /// Parses `source`; every name must be in `allowed` (the sub-graders' names).
    /// - Throws: `GraderSpecError` naming the problem and its column.
    public init(_ source: String, allowed: Set<String>) throws {
        var p = Parser(chars: Array(source), allowed: allowed)
        p.skipSpace()
        guard p.i < p.chars.count else { throw GraderSpecError("calculate_output: the formula is empty") }
        let root = try p.expr()
        p.skipSpace()
        if p.i < p.chars.count { throw p.error("unexpected '\(p.chars[p.i])'") }
        self.source = source
        self.root = root
        self.names = p.used
    }

    public var description: String { source }

    /// The formula's value for the sub-scores `values` (every name it uses must be there).
    /// - Throws: `GraderError` (other_error) for a division by zero, a function outside its domain, or a non-finite value.
    public func evaluate(_ values: [String: Double]) throws -> Double {
        let v = try GraderFormula.eval(root, values)
        guard v.isFinite else { throw GraderError(.otherError, "calculate_output: the result is not finite (\(v))") }
        return v
    }

    static func eval(_ n: Node, _ values: [String: Double]) throws -> Double {
        func fail(_ m: String) -> GraderError { GraderError(.otherError, "calculate_output: \(m)") }
        switch n {
        case .number(let x): return x
        case .name(let s):
            guard let v = values[s] else { throw fail("no score for '\(s)'") }
            return v
        case .negate(let a): return -(try eval(a, values))
        case .binary(let op, let a, let b):
            let x = try eval(a, values), y = try eval(b, values)
            switch op {
            case "+": return x + y
            case "-": return x - y
            case "*": return x * y
            case "/":
                guard y != 0 else { throw fail("division by zero") }
                return x / y
            default:
                let r = pow(x, y)
                if r.isNaN { throw fail("\(x) ^ \(y) is not a real number") }
                if !r.isFinite { throw fail("\(x) ^ \(y) is not finite") }
                return r
            }
        case .call(let f, let args):
            let xs = try args.map { try eval($0, values) }
            switch f {
            case "min": return xs.min() ?? 0
            case "max": return xs.max() ?? 0
            case "sqrt" where xs[0] < 0: throw fail("sqrt of a negative number (\(xs[0]))")
            case "log" where xs[0] <= 0: throw fail("log of a non-positive number (\(xs[0]))")
            default:
                let r = unary[f]!(xs[0])  // f was checked against `unary` when parsing
                if !r.isFinite { throw fail("\(f)(\(xs[0])) is not finite") }
                return r
            }
        }
    }

    // MARK: parsing

    struct Parser {
        let chars: [Character]
        let allowed: Set<String>
        var i = 0
        var depth = 0
        var used: [String] = []

        init(chars: [Character], allowed: Set<String>) {
            self.chars = chars
            self.allowed = allowed
        }

        func error(_ m: String, at pos: Int? = nil) -> GraderSpecError {
            GraderSpecError("calculate_output: \(m) at column \((pos ?? i) + 1) of '\(String(chars))'")
        }

        mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

        mutating func peek() -> Character? {
            skipSpace()
            return i < chars.count ? chars[i] : nil
        }

        mutating func expr() throws -> Node {
            var left = try term()
            while let c = peek(), c == "+" || c == "-" {
                i += 1
                left = .binary(c, left, try term())
            }
            return left
        }

        mutating func term() throws -> Node {
            var left = try unary()
            while let c = peek(), c == "*" || c == "/" {
                i += 1
                left = .binary(c, left, try unary())
            }
            return left
        }

        mutating func unary() throws -> Node {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 200 else { throw error("the formula nests deeper than 200 levels") }
            if let c = peek(), c == "-" || c == "+" {
                i += 1
                let operand = try unary()
                return c == "-" ? .negate(operand) : operand
            }
            return try power()
        }

        mutating func power() throws -> Node {
            let base = try primary()
            if peek() == "^" {
                i += 1
                return .binary("^", base, try unary())
            }
            return base
        }

        mutating func primary() throws -> Node {
            guard let c = peek() else { throw error("the formula ends where a value was expected") }
            if c == "(" {
                i += 1
                let e = try expr()
                guard peek() == ")" else { throw error("expected ')'") }
                i += 1
                return e
            }
            if c.isASCII && (c.isNumber || c == ".") { return try number() }
            if c.isASCII && (c.isLetter || c == "_") {
                let start = i
                while i < chars.count, chars[i].isASCII, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { i += 1 }
                let name = String(chars[start..<i])
                if peek() == "(" { return try call(name, at: start) }
                guard allowed.contains(name) else {
                    let known = allowed.sorted().joined(separator: ", ")
                    throw error("unknown name '\(name)' (the graders are \(known.isEmpty ? "none" : known))", at: start)
                }
                if !used.contains(name) { used.append(name) }
                return .name(name)
            }
            throw error("unexpected '\(c)'")
        }

        mutating func call(_ name: String, at start: Int) throws -> Node {
            guard GraderFormula.functionNames.contains(name) else {
                throw error("unknown function '\(name)' (the functions are \(GraderFormula.functionNames.joined(separator: ", ")))", at: start)
            }
            i += 1  // '('
            var args: [Node] = []
            if peek() != ")" {
                args.append(try expr())
                while peek() == "," {
                    i += 1
                    args.append(try expr())
                }
            }
            guard peek() == ")" else { throw error("expected ',' or ')' in the arguments of \(name)") }
            i += 1
            if name == "min" || name == "max" {
                if args.isEmpty { throw error("\(name) takes at least one argument", at: start) }
            } else if args.count != 1 {
                throw error("\(name) takes 1 argument, got \(args.count)", at: start)
            }
            return .call(name, args)
        }

        mutating func number() throws -> Node {
            let start = i
            while i < chars.count, chars[i].isASCII, chars[i].isNumber || chars[i] == "." { i += 1 }
            if i < chars.count, chars[i] == "e" || chars[i] == "E" {
                var j = i + 1
                if j < chars.count, chars[j] == "+" || chars[j] == "-" { j += 1 }
                if j < chars.count, chars[j].isASCII, chars[j].isNumber {
                    i = j
                    while i < chars.count, chars[i].isASCII, chars[i].isNumber { i += 1 }
                }
            }
            let text = String(chars[start..<i])
            guard let v = Double(text), v.isFinite else { throw error("bad number '\(text)'", at: start) }
            return .number(v)
        }
    }
}
