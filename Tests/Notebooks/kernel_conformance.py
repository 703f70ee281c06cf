"""kernel_conformance.py: jupyter_kernel_test's KernelTests (the ready-made acceptance test for Jupyter kernels)
against the Tycho kernelspec `tycho` found on JUPYTER_PATH. Run by Tests/TychoCLITests/NotebookTests.swift.
The skipped checks are features Tycho does not offer (clear_output, pager payloads)."""

import unittest

import jupyter_kernel_test as jkt


class TychoKernelTests(jkt.KernelTests):
    kernel_name = "tycho"
    language_name = "lua"
    file_extension = ".lua"
    code_hello_world = 'print("hello, world")'
    code_stderr = 'io.stderr:write("oops\\n")'
    completion_samples = [{"text": "tensor.manual_s", "matches": {"tensor.manual_seed("}}]
    complete_code_samples = ["x = 1", "print(1)", "for i = 1, 2 do end"]
    incomplete_code_samples = ["for i = 1, 2 do", "x = {", "1 +"]
    invalid_code_samples = ["x = = 1", "end end"]
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": "x = 2\nx + 1", "result": "3"}]
    code_display_data = [{"code": 'display("<b>x</b>", "text/html")', "mime": "text/html"},
                         {"code": 'display(\'<svg xmlns="http://www.w3.org/2000/svg"></svg>\')', "mime": "image/svg+xml"}]
    code_generate_error = 'error("boom")'
    code_inspect_sample = "tensor.zeros"
    code_history_pattern = "6 *"
    supported_history_operations = ("tail", "range", "search")


if __name__ == "__main__":
    unittest.main(verbosity=2)
