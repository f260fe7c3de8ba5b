"""Windows program lookup and batch-file command lines: pure functions, checked on every OS."""

from __future__ import annotations

import pytest

from orchestrator.platform.cmdline import split_windows
from orchestrator.platform.wincommand import (
    BatchArgumentError,
    batch_command_line,
    is_batch,
    resolve_program,
)

FILES = {
    r"c:\nodejs\npm.cmd", r"c:\nodejs\node.exe", r"c:\py\python.exe", r"c:\py\python.bat",
    r"c:\other\python.exe", r"f:\comfyui\run_nvidia_gpu.bat", r"c:\svc\bin\tool.exe", r"c:\svc\local.exe",
    r"c:\program files\x\app.exe", r"c:\py\python3.11.exe", r"c:\scripts\job.py",
}
PATH = r"C:\Windows;C:\nodejs;C:\py;;C:\other"


def is_file(path: str) -> bool:  # NTFS compares names without regard to case
    return path.lower().replace("/", "\\") in FILES


def resolve(name: str, *, path: str = PATH, cwd: str = r"C:\svc", pathext: str | None = None) -> str | None:
    return resolve_program(name, cwd=cwd, path=path, pathext=pathext, is_file=is_file)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("npm", r"C:\nodejs\npm.cmd"),  # PATHEXT finds the .cmd that CreateProcess alone would not
        ("node", r"C:\nodejs\node.exe"),
        ("python", r"C:\py\python.exe"),  # .EXE comes before .BAT in PATHEXT; C:\py before C:\other
        ("npm.cmd", r"C:\nodejs\npm.cmd"),
        ("python3.11", r"C:\py\python3.11.exe"),  # a dot in the name is not an extension that exists
        (r"F:\ComfyUI\run_nvidia_gpu.bat", r"F:\ComfyUI\run_nvidia_gpu.bat"),
        ("F:/ComfyUI/run_nvidia_gpu.bat", "F:/ComfyUI/run_nvidia_gpu.bat"),
        (r"bin\tool", r"C:\svc\bin\tool.exe"),  # a folder part: relative to the service's cwd
        (r".\local.exe", r"C:\svc\local.exe"),
        ("local", None),  # a bare name is not looked up in the cwd, as on POSIX
        (r"F:\ComfyUI\missing.bat", None),
        ("nothing", None),
    ],
)
def test_resolve_program(name: str, expected: str | None) -> None:
    assert resolve(name) == expected


def test_resolve_program_path_details() -> None:
    assert resolve("app", path=r'"C:\Program Files\x";C:\py') == r"C:\Program Files\x\app.exe"
    assert resolve("job", path=r"C:\scripts", pathext=".PY") == r"C:\scripts\job.py"
    assert resolve("python", path="") is None


@pytest.mark.parametrize(("name", "batch"), [("a.bat", True), ("A.CMD", True), ("x.exe", False), ("bat", False)])
def test_is_batch(name: str, batch: bool) -> None:
    assert is_batch(name) is batch


@pytest.mark.parametrize(
    ("args", "tail"),
    [
        ((), ""),
        (("--listen", "0.0.0.0", "--port", "8188"), " --listen 0.0.0.0 --port 8188"),
        (("C:\\dir\\file.txt", "a-b_c.d:e/f"), " C:\\dir\\file.txt a-b_c.d:e/f"),
        (("a b",), ' "a b"'),
        (("",), ' ""'),
        (("a&b", "c|d", "(x)", "x^y", "p>q", "r<s"), ' "a&b" "c|d" "(x)" "x^y" "p>q" "r<s"'),
        (("k=v", "a,b", "a;b"), ' "k=v" "a,b" "a;b"'),  # cmd splits batch arguments at = , ; too
        (("%PATH%",), ' "%%cd:~,%PATH%%cd:~,%"'),
        (("100%",), ' "100%%cd:~,%"'),
        (('say "hi"',), ' "say ""hi"""'),
        (('a\\"b',), ' "a\\\\""b"'),  # 2n backslashes before the doubled quote
        (("C:\\dir\\",), ' "C:\\dir\\\\"'),  # a trailing backslash is quoted, doubled before the quote
        (("café",), ' "café"'),
    ],
)
def test_batch_command_line(args: tuple[str, ...], tail: str) -> None:
    assert batch_command_line(r"F:\ComfyUI\run_nvidia_gpu.bat", args) == '"F:\\ComfyUI\\run_nvidia_gpu.bat"' + tail


def test_batch_script_path_is_always_quoted_and_its_percent_escaped() -> None:
    assert batch_command_line(r"C:\My Scripts\go.cmd", ["x"]) == '"C:\\My Scripts\\go.cmd" x'
    assert batch_command_line(r"C:\100%\go.bat", []) == '"C:\\100%%cd:~,%\\go.bat"'


NASTY = ['a"&calc&"b', "x & del *", "%COMSPEC%", '" | whoami', "^&^|", 'trail\\', '\\\\"\\', "(a)&(b)", "!x!"]


def test_no_operator_or_variable_escapes_the_quotes() -> None:
    """cmd.exe toggles quoting at every `"`: outside quotes no operator may appear, and no %NAME% form."""
    line = batch_command_line(r"C:\s.bat", NASTY)
    assert line.count('"') % 2 == 0
    quoted = False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif not quoted:
            assert c not in "&|<>^()%!", f"{c!r} outside quotes in {line}"
    assert "%" not in line.replace("%%cd:~,%", "")


def test_arguments_without_quotes_or_percent_round_trip_through_the_program_parser() -> None:
    args = ["plain", "a b", "", "C:\\dir\\", "tab\there", "x&y", "end\\\\"]
    line = batch_command_line(r"C:\s.bat", args)
    assert split_windows(line)[1:] == args


@pytest.mark.parametrize("bad", ["line\nbreak", "cr\rhere", "nul\0"])
def test_unpassable_arguments_are_refused_with_their_position(bad: str) -> None:
    with pytest.raises(BatchArgumentError, match="argument 2 of"):
        batch_command_line(r"C:\s.bat", ["ok", bad])


def test_a_script_path_with_a_quote_is_refused() -> None:
    with pytest.raises(BatchArgumentError, match="cannot contain quotes"):
        batch_command_line('C:\\a"b.bat', [])
