"""What a message may show of a config value: never the text of an environment value.

The rule: no error message, event, log line or API answer quotes the text of an env value (the `env:`
mapping, an env_file line, anything a `${VAR}` brought in) or a URL's credentials. Messages name the
file, line, key and what was expected instead.

- `Expanded` marks a string that took text from a `${VAR}`: it remembers the text as written
  (`template`) and the variables, so `shown()` can say "the value of ${HF_TOKEN}" and `shown_command()`
  can print `--token ${HF_TOKEN}` where the expanded word would have been.
- `shown_url()` keeps scheme, host, port and path and hides userinfo and the query (a token in either
  is common: `http://user:pass@host/`, `/health?key=...`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Expanded", "shown", "shown_command", "shown_url"]

HIDDEN = "***"


class Expanded(str):
    """A str holding text from the environment; equal to (and used as) the plain expanded text."""

    template: str  # the text as written in the config, ${VAR} references and all
    names: tuple[str, ...]  # the variables referenced

    def __new__(cls, value: str, template: str, names: Iterable[str]) -> Expanded:
        self = super().__new__(cls, value)
        self.template = template
        self.names = tuple(dict.fromkeys(names))
        return self

    def __repr__(self) -> str:
        # A stray {value!r} (a message, structlog's console renderer) shows the text as written.
        return repr(self.template)

    def __reduce__(self) -> tuple[type[Expanded], tuple[str, str, tuple[str, ...]]]:
        # copy, deepcopy and pickle rebuild it whole (str's own reduce would drop the template).
        return (Expanded, (str(self), self.template, self.names))


def shown(value: Any) -> str:
    """How a message may show a raw value: repr() of written text, never of text from the environment."""
    if isinstance(value, Expanded):
        refs = ", ".join(f"${{{name}}}" for name in value.names) or "a ${VAR}"
        return f"the value of {refs} (not shown)"
    return repr(value)


def shown_command(argv: Iterable[str]) -> str:
    """A command line for display: words that came from a ${VAR} appear as written, unexpanded."""
    return " ".join(word.template if isinstance(word, Expanded) else word for word in argv)


def shown_url(url: str) -> str:
    """scheme://host:port/path, with userinfo and query replaced by *** (and the text of an Expanded
    URL as written, so ${VAR}s stay unexpanded)."""
    text = url.template if isinstance(url, Expanded) else url
    try:
        parts = urlsplit(text)
    except ValueError:
        return HIDDEN
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN}@{netloc.rsplit('@', 1)[1]}"
    query = f"?{HIDDEN}" if parts.query else ""
    fragment = f"#{HIDDEN}" if parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}{fragment}" if parts.scheme else HIDDEN
