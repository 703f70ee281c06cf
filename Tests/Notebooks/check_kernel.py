"""check_kernel.py: drives `tycho kernel` through jupyter_client, as JupyterLab and nbclient do.

Run by Tests/TychoCLITests/NotebookKernelTests.swift after `tycho kernel install --prefix DIR` (twice: the
kernelspec `tycho` with interrupt_mode "signal" and `tycho-message` with "message"), with JUPYTER_PATH pointing
at DIR/share/jupyter. Checks kernel_info, execute (stdout, stderr, results, display_data, errors, counts,
aborting queued cells after an error), complete, inspect, is_complete, stdin (io.read), user_expressions,
interrupt (SIGINT and interrupt_request), malformed and badly signed messages, and shutdown.
Prints one line per check and `N passed, N failed` at the end; exits 1 on any failure.
"""

import os
import sys
import time
import traceback

from jupyter_client.manager import start_new_kernel

RESULTS = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    if condition:
        RESULTS["passed"] += 1
        print(f"ok   {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name} {detail}")


def run(kc, code, timeout=30, **kw):
    """Executes code; returns (reply content, iopub messages of that request up to idle)."""
    msgs = []
    msg_id = kc.execute(code, **kw)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    return reply["content"], msgs


def of_type(msgs, t):
    return [m["content"] for m in msgs if m["msg_type"] == t]


def stream_text(msgs, name):
    return "".join(c["text"] for c in of_type(msgs, "stream") if c["name"] == name)


def main_checks(kc):
    info = kc.kernel_info(reply=True, timeout=10)["content"]
    check("kernel_info language", info["language_info"]["name"] == "lua" and info["language_info"]["file_extension"] == ".lua", info)
    check("kernel_info protocol", info["protocol_version"].startswith("5.") and info["implementation"] == "tycho", info)

    content, msgs = run(kc, 'print("hello", 42)\nio.write("partial")\nio.stderr:write("warn\\n")')
    check("execute ok", content["status"] == "ok", content)
    check("stdout streamed", stream_text(msgs, "stdout") == "hello\t42\npartial", stream_text(msgs, "stdout"))
    check("stderr streamed", stream_text(msgs, "stderr") == "warn\n", stream_text(msgs, "stderr"))
    types = [m["msg_type"] for m in msgs]
    check("busy, execute_input first", types[:2] == ["status", "execute_input"] and msgs[0]["content"]["execution_state"] == "busy", types)

    count = content["execution_count"]
    content, msgs = run(kc, "x = 20\nx + 22")
    results = of_type(msgs, "execute_result")
    check("execute_result", len(results) == 1 and results[0]["data"]["text/plain"] == "42", results)
    check("execution_count increments", content["execution_count"] == count + 1 and results[0]["execution_count"] == count + 1, content)

    content, msgs = run(kc, "x + 1", silent=True)
    check("silent: no outputs, no count", content["status"] == "ok" and not of_type(msgs, "execute_result")
          and not of_type(msgs, "execute_input") and content["execution_count"] == count + 1, content)

    content, msgs = run(kc, 'display({{name = "a", acc = 0.5}, {name = "b", acc = 1}})')
    shown = of_type(msgs, "display_data")
    check("display_data html", len(shown) == 1 and "<table>" in shown[0]["data"]["text/html"], shown)

    content, msgs = run(kc, 'error("boom")')
    errors = of_type(msgs, "error")
    check("error reply", content["status"] == "error" and "boom" in content["evalue"] and content["ename"] == "LuaError", content)
    check("error on iopub", len(errors) == 1 and any("boom" in line for line in errors[0]["traceback"]), errors)

    # After an error with stop_on_error, an execute_request already queued is aborted.
    first = kc.execute('local t = sys.clock()\nwhile sys.clock() - t < 0.3 do end\nerror("first")')
    second = kc.execute('print("must not run")')
    replies = {}
    while len(replies) < 2:
        m = kc.get_shell_msg(timeout=10)
        replies[m["parent_header"]["msg_id"]] = m["content"]
    check("queued cell aborted", replies[first]["status"] == "error" and replies[second]["status"] == "aborted", replies)
    time.sleep(0.2)
    while True:
        try:
            kc.get_iopub_msg(timeout=0.5)
        except Exception:
            break

    content, _ = run(kc, "y = 6 * 7", user_expressions={"answer": "y", "bad": "nope("})
    ue = content["user_expressions"]
    check("user_expressions", ue["answer"]["data"]["text/plain"] == "42" and ue["bad"]["status"] == "error", ue)

    reply = kc.complete("local s = 'é'; tensor.ze", reply=True, timeout=10)["content"]
    check("complete tensor.ze", "tensor.zeros(" in reply["matches"], reply)
    check("complete cursor in code points", reply["cursor_end"] == 24 and reply["cursor_start"] == 15, reply)
    reply = kc.complete("pri", reply=True, timeout=10)["content"]
    check("complete globals", "print(" in reply["matches"] and reply["cursor_start"] == 0, reply)

    reply = kc.inspect("tensor.zeros(2, 3)", 8, reply=True, timeout=10)["content"]
    check("inspect help text", reply["found"] and "tensor.zeros(" in reply["data"]["text/plain"], reply)
    reply = kc.inspect("nothing_here", 3, reply=True, timeout=10)["content"]
    check("inspect unknown", reply["status"] == "ok" and not reply["found"], reply)

    for code, want in [("x = 1", "complete"), ("for i = 1, 3 do", "incomplete"), ("x = = 1", "invalid"), ("1 +", "incomplete")]:
        msg_id = kc.is_complete(code)
        reply = kc.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=10)
        reply = reply["content"]
        check(f"is_complete {code!r}", reply["status"] == want, reply)

    # stdin: io.read asks the front end when allowed, and is an error when not.
    msg_id = kc.execute("answer = io.read()\nanswer", allow_stdin=True)
    req = kc.get_stdin_msg(timeout=10)
    check("input_request", req["msg_type"] == "input_request" and req["parent_header"]["msg_id"] == msg_id, req)
    kc.input("forty-two")
    reply = kc.get_shell_msg(timeout=10)
    check("io.read got the line", reply["content"]["status"] == "ok", reply["content"])
    content, msgs = run(kc, "answer")
    check("io.read value", of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "forty-two", msgs)
    content, msgs = run(kc, "io.read()", allow_stdin=False)
    check("io.read without stdin is an error", content["status"] == "error" and "no standard input" in content["evalue"], content)

    # Malformed and forged messages are ignored; the kernel keeps serving.
    kc.shell_channel.socket.send_multipart([b"garbage"])
    kc.shell_channel.socket.send_multipart([b"<IDS|MSG>", b"bad", b"{}", b"{}", b"{}", b"{}"])
    content, msgs = run(kc, "1 + 1")
    check("survives malformed messages", content["status"] == "ok" and of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "2", content)

    content, _ = run(kc, "os.exit(1)")
    check("os.exit is refused", content["status"] == "error", content)


def interrupt_check(km, kc, label):
    msg_id = kc.execute("while true do end")
    time.sleep(0.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=15)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=15)
    check(f"interrupt ({label})", reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted", reply["content"])
    content, msgs = run(kc, "2 + 2")
    check(f"alive after interrupt ({label})", content["status"] == "ok" and of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "4", content)
    # SIGINT between cells is harmless in kernel mode.
    if label == "signal":
        km.interrupt_kernel()
        time.sleep(0.3)
        content, _ = run(kc, "3")
        check("idle SIGINT harmless", content["status"] == "ok", content)


def main():
    try:
        km, kc = start_new_kernel(kernel_name="tycho", startup_timeout=60)
    except Exception:
        traceback.print_exc()
        check("kernel starts from its kernelspec", False)
        return
    check("kernel starts from its kernelspec", True)
    try:
        main_checks(kc)
        interrupt_check(km, kc, "signal")
    except Exception:
        traceback.print_exc()
        check("no exception in the checks", False)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        check("shutdown_request ends the process", not km.is_alive())

    km, kc = start_new_kernel(kernel_name="tycho-message", startup_timeout=60)
    try:
        interrupt_check(km, kc, "message")
    except Exception:
        traceback.print_exc()
        check("no exception in the message-mode checks", False)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        check("shutdown (message mode)", not km.is_alive())


if __name__ == "__main__":
    main()
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)
