// GraderFormulaTests.swift: calculate_output (GraderFormula.swift): precedence and associativity, the functions,
// domain errors per sample, and formulas refused when a grader is made.

import Foundation
import Testing
@testable import TychoTrain

@Suite struct GraderFormulaTests {
    let values = ["a": 0.5, "b": 2.0]

    func value(_ f: String) throws -> Double { try GraderFormula(f, allowed: ["a", "b"]).evaluate(values) }

    @Test func precedenceAndAssociativity() throws {
        #expect(try value("a + b * 2") == 4.5)
        #expect(try value("(a + b) * 2") == 5)
        #expect(try value("b - a - a") == 1)
        #expect(try value("b / b / 2") == 0.5)
        #expect(try value("2 ^ 3 ^ 2") == 512)
        #expect(try value("-b ^ 2") == -4)
        #expect(try value("b ^ -1") == 0.5)
        #expect(try value("+a - -a") == 1)
        #expect(try value("1e1 * .5") == 5)
    }

    @Test func functions() throws {
        #expect(try value("min(a, b, 0.1)") == 0.1)
        #expect(try value("max(a)") == 0.5)
        #expect(try value("abs(a - b)") == 1.5)
        #expect(try value("floor(-a) + ceil(a)") == 0)
        #expect(try value("exp(0) + sqrt(b * 2) + log(b)") == 3 + log(2.0))
        #expect(try GraderFormula("max(a, b)", allowed: ["a", "b", "c"]).names == ["a", "b"])
    }

    @Test func domainErrorsAreSampleErrors() {
        for (f, text) in [("a / (b - 2)", "division by zero"), ("sqrt(a - b)", "sqrt of a negative"),
                          ("log(0)", "log of a non-positive"), ("exp(1000)", "not finite"), ("(-8) ^ 0.5", "not a real number"),
                          ("b ^ 2000", "not finite")] {
            #expect(throws: GraderError.self, "\(f)") { try value(f) }
            do {
                _ = try value(f)
            } catch let e as GraderError {
                #expect(e.kind == .otherError && e.message.contains(text), "\(f): \(e.message)")
            } catch {
                Issue.record("\(f): \(error)")
            }
        }
    }

    @Test func badFormulasAreRefused() {
        for (f, text) in [("", "empty"), ("a +", "ends where a value"), ("a + c", "unknown name 'c'"), ("pow(a, 2)", "unknown function"),
                          ("abs(a, b)", "takes 1 argument"), ("min()", "at least one"), ("(a", "expected ')'"), ("a b", "unexpected 'b'"),
                          ("a $ b", "unexpected '$'"), ("1.2.3", "bad number"), ("max(a b)", "expected ',' or ')'"),
                          (String(repeating: "-", count: 500) + "a", "deeper than 200")] {
            do {
                _ = try GraderFormula(f, allowed: ["a", "b"])
                Issue.record("\(f) parsed")
            } catch let e as GraderSpecError {
                #expect(e.message.contains(text), "\(f): \(e.message)")
            } catch {
                Issue.record("\(f): \(error)")
            }
        }
    }
}
