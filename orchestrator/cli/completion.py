"""`orchestrator completion bash|zsh|powershell`: a completion script made from the parser itself.

The commands and each command's options come from argparse (so a new option completes without an
edit here); service names come from the running supervisor: the script calls
`orchestrator completion --services [-c FILE]`, which prints them one a line, or nothing at all
(no config, nothing running): a completion must never print an error into the user's line.
zsh uses the bash script through bashcompinit.

    source <(orchestrator completion bash)            # ~/.bashrc
    source <(orchestrator completion zsh)             # ~/.zshrc
    orchestrator completion powershell | Out-String | Invoke-Expression   # $PROFILE
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

__all__ = ["NAMED", "commands_and_options", "print_services", "script"]

NAMED = ("status", "start", "stop", "restart", "logs", "signal")  # commands whose arguments are services
FILES = ("check", "config")  # commands whose argument is a config file


def commands_and_options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """{command: [its option strings]} from the parser's subcommands."""
    out: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse keeps its subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sorted({o for a in sub._actions if a.help != argparse.SUPPRESS
                                    for o in a.option_strings})
    return out


def script(shell: str, table: Mapping[str, list[str]]) -> str:
    if shell == "powershell":
        return _powershell(table)
    body = _bash(table)
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body


def print_services(config_arg: str | None) -> int:
    """The running supervisor's service names, one a line; silent on any failure."""
    from orchestrator.cli.client import ClientError
    from orchestrator.cli.target import resolve_target

    try:
        with resolve_target(config_arg).client() as client:
            names = [s["name"] for s in client.get("/api/status")["services"]]
    except (ClientError, KeyError, TypeError, ValueError):
        return 0
    sys.stdout.write("".join(f"{n}\n" for n in names))
    return 0


def _bash(table: Mapping[str, list[str]]) -> str:
    cases = "\n".join(f"        {name}) opts=\"{' '.join(opts)}\";;" for name, opts in table.items())
    return f"""# orchestrator completion (bash): source <(orchestrator completion bash)
_orchestrator() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" prog="${{COMP_WORDS[0]}}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=( $(compgen -W "{' '.join(table)} --help --version" -- "$cur") )
        return
    fi
    local cmd="${{COMP_WORDS[1]}}" opts="" cfg=() i
    case "$prev" in -c|--config|--unit-dir) COMPREPLY=( $(compgen -f -- "$cur") ); return;; esac
    case "$cmd" in
{cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
        return
    fi
    case "$cmd" in
        {'|'.join(NAMED)})
            for ((i = 1; i < COMP_CWORD; i++)); do
                case "${{COMP_WORDS[i]}}" in -c|--config) cfg=(-c "${{COMP_WORDS[i+1]}}");; esac
            done
            local names
            names="$("$prog" completion --services "${{cfg[@]}}" 2>/dev/null)"
            case "$cmd" in start|stop|restart) names="$names all";; esac
            COMPREPLY=( $(compgen -W "$names" -- "$cur") );;
        {'|'.join(FILES)}) COMPREPLY=( $(compgen -f -- "$cur") );;
    esac
}}
complete -F _orchestrator orchestrator
"""


def _powershell(table: Mapping[str, list[str]]) -> str:
    entries = "\n".join(f"    '{name}' = @({', '.join(repr(o) for o in opts)})" for name, opts in table.items())
    return f"""# orchestrator completion (PowerShell):
#   orchestrator completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName orchestrator, orchestrator.exe -ScriptBlock {{
    param($wordToComplete, $commandAst, $cursorPosition)
    $options = @{{
{entries}
    }}
    $words = @($commandAst.CommandElements | ForEach-Object {{ $_.ToString() }})
    $named = @({', '.join(repr(n) for n in NAMED)})
    if ($words.Count -le 1 -or ($words.Count -eq 2 -and $wordToComplete)) {{
        $candidates = $options.Keys
    }} elseif ($wordToComplete -like '-*') {{
        $candidates = $options[$words[1]]
    }} elseif ($named -contains $words[1]) {{
        $cfg = @()
        $i = [Array]::IndexOf($words, '-c')
        if ($i -ge 0 -and $i + 1 -lt $words.Count) {{ $cfg = @('-c', $words[$i + 1]) }}
        $candidates = @(& $words[0] completion --services @cfg 2>$null)
        if (@('start', 'stop', 'restart') -contains $words[1]) {{ $candidates += 'all' }}
    }} else {{
        $candidates = @()
    }}
    $candidates | Where-Object {{ $_ -like "$wordToComplete*" }} | Sort-Object | ForEach-Object {{
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }}
}}
"""
