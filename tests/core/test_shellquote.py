"""`core.shellquote`: a value placed in a shell script is text wherever the script puts it.

The fuzz builds scripts from pieces of shell syntax (quotes, substitutions, comments,
here-documents, case statements, ANSI-C strings...) with values between them. The scanner
either refuses a place, or the real shells run the script without running anything the
value holds: every value tries to create a file, and none may appear."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.shellquote import ShellText, Unquotable, contexts, script_index

SHELLS = [s for s in ("/bin/sh", shutil.which("bash"), shutil.which("dash")) if s]
PIECES = ["echo ", " ", "'", '"', "$(", ")", "(", "# ", "\n", "<<EOF\n", "<<'EOF'\n", "EOF\n",
          "<<-X\n", "\tX\n", "<<<", "case a in a) ", ";; esac", "`", "\\", "$'", "\\'", "${HOME:-",
          "}", "$((", "((", "))", "$[", "]", "a=", ";", "&&", "|", "x", "-", "=", "!", "{ ", " }",
          "%s", "printf ", "<(", ">(", "a=("]
SUBSTITUTION = "!inside $(...) (set a variable first: V=${...}; then use \"$V\" in it)"
LIMIT = 10  # seconds; only to keep a broken test from hanging the suite


def payloads(marker: Path) -> st.SearchStrategy[str]:
    touch = f"touch {marker}"
    attacks = [f"$({touch})", f"`{touch}`", f";{touch};", f"\n{touch}\n", f"'; {touch}; '",
               f'"; {touch}; "', f"')\n{touch}\n('", f"\nEOF\n{touch}\n", f"\\'; {touch} #",
               f"}}; {touch}; {{", f"' && {touch} && echo '", f"$'\\''; {touch} #"]
    return st.tuples(st.text(alphabet="'\"\\$`;()#\n x", max_size=4), st.sampled_from(attacks),
                     st.text(alphabet="'\"\\$`;()#\n x", max_size=4)).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_value_ever_runs_as_shell_code(data: st.DataObject, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    marker.unlink(missing_ok=True)  # tmp_path is shared by the examples of one test
    script = ShellText()
    try:
        for _ in range(data.draw(st.integers(1, 3))):
            script.text("".join(data.draw(st.lists(st.sampled_from(PIECES), max_size=6))))
            script.value(data.draw(payloads(marker)))
        script.text("".join(data.draw(st.lists(st.sampled_from(PIECES), max_size=4))))
    except Unquotable:
        return  # refused: the checker or the attempt says why
    for shell in SHELLS:
        # a script the pieces made loop (or wait) is killed at the limit: what is checked
        # is only that no value ran as code, i.e. wrote the marker, before it ended
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([shell, "-c", script.result()], capture_output=True, timeout=LIMIT,
                           cwd=tmp_path, stdin=subprocess.DEVNULL)
        assert not marker.exists(), (shell, script.result())


@pytest.mark.parametrize(("parts", "expected"), [
    (("echo ", 0), ["bare"]),
    (("echo '", 0, "'"), ["single"]),
    (('echo "', 0, '"'), ["double"]),
    (("echo hi # ", 0), ["comment"]),
    (("echo ", 0, "#not-a-comment ", 0), ["bare", "bare"]),
    (('echo "$(printf %s ', 0, ')" ', 0), [SUBSTITUTION, "bare"]),
    (("echo `", 0, "`"), ["!inside backticks (use $(...) instead)"]),
    (("cat <<EOF\n", 0, "\nEOF\necho ", 0), ["!inside a here-document", "bare"]),
    (("cat <<", 0), ["!as a here-document's delimiter"]),
    (("cat <<< ", 0), ["bare"]),
    (("echo \\", 0), ["!right after a backslash"]),
    (('echo "${HOME:-', 0, '}"'), ["!inside a ${...} shell expansion"]),
    (("echo $'", 0, "'", 0), ["!after a $'...' string (shells read it differently)"] * 2),
    (("cat <(echo ", 0, ")"), [SUBSTITUTION]),
    (("a=(x ", 0, ") ", 0), ["!inside a bash array assignment NAME=(...)", "bare"]),
    (("echo $((1 + (", 0, "))) ", 0), ["!inside shell arithmetic (its text is evaluated as code)",
                                        "bare"]),
    (("(( ", 0, " > 1 )) && echo \"$[", 0), ["!inside shell arithmetic (its text is evaluated "
                                             "as code)"] * 2),
    (("x=$(case a in a) echo;; esac) ", 0), ["!after a case statement inside $(...)"]),
    (("x=$(echo ", ("y",), ") ", 0), [SUBSTITUTION, "bare"]),
    (("echo ", ("'",), 0, ("'",)), ["bare", "single", "single"]),  # raw text is read
])
def test_the_context_of_each_place(parts: tuple[object, ...], expected: list[str]) -> None:
    assert contexts(parts) == expected


@pytest.mark.parametrize(("argv", "index"), [
    (["sh", "-c", "s"], 2), (["/bin/bash", "-ec", "s", "name"], 2), (["bash", "-e", "-c", "s"], 3),
    (["busybox", "sh", "-c", "s"], 3), (["python", "-c", "s"], None), (["sh", "script.sh"], None),
    (["sh", "-c"], None), (["sh", None, "-c", "s"], None), (["env", "sh", "-c", "s"], 3)])
def test_where_the_script_of_an_argv_is(argv: list[str | None], index: int | None) -> None:
    assert script_index(argv) == index
