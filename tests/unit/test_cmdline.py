from __future__ import annotations

import pytest

from orchestrator.platform.cmdline import split_command, split_windows


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("prog a b  c", ["prog", "a", "b", "c"]),
        ("prog\ta", ["prog", "a"]),
        ('"C:\\Program Files\\nodejs\\node.exe" start', ["C:\\Program Files\\nodejs\\node.exe", "start"]),
        # The program name keeps its backslashes and ends at the closing quote.
        ('"C:\\dir\\"x y', ["C:\\dir\\", "x", "y"]),
        ("F:\\ComfyUI\\run_nvidia_gpu.bat --listen", ["F:\\ComfyUI\\run_nvidia_gpu.bat", "--listen"]),
        # Microsoft's documented examples (arguments after the program name).
        ('prog "abc" d e', ["prog", "abc", "d", "e"]),
        ('prog a\\\\\\b d"e f"g h', ["prog", "a\\\\\\b", "de fg", "h"]),
        ('prog a\\\\\\"b c d', ["prog", 'a\\"b', "c", "d"]),
        ('prog a\\\\\\\\"b c" d e', ["prog", "a\\\\b c", "d", "e"]),
        ('prog "ab\\"c" "\\\\" d', ["prog", 'ab"c', "\\", "d"]),
        # "" inside quotes is a literal quote and ends the quoted part (CommandLineToArgvW, not msvcrt 2008+).
        ('prog a"b"" c d', ["prog", 'ab"', "c", "d"]),
        ('prog """a"""', ["prog", '"a"']),
        ('prog "" x', ["prog", "", "x"]),
        ("prog trailing   ", ["prog", "trailing"]),
        ("   prog", ["prog"]),
        ("", []),
        ("prog C:\\path\\with\\trailing\\", ["prog", "C:\\path\\with\\trailing\\"]),
        ('prog "unterminated arg', ["prog", "unterminated arg"]),
    ],
)
def test_split_windows_follows_commandlinetoargvw(command: str, argv: list[str]) -> None:
    assert split_windows(command) == argv


def test_split_command_picks_the_rules() -> None:
    assert split_command("a 'b c'", windows=False) == ["a", "b c"]
    assert split_command("a 'b c'", windows=True) == ["a", "'b", "c'"]
    assert split_command('C:\\x\\y.exe "a b"', windows=True) == ["C:\\x\\y.exe", "a b"]


def test_posix_unbalanced_quote_is_an_error() -> None:
    with pytest.raises(ValueError):
        split_command("a 'b", windows=False)
