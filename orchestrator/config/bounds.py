"""What a config file may cost to read: at most 1 MiB of text, and aliases that add at most 100,000 nodes.

Measured on main before these bounds (2 cores): a 324-byte file of 7 levels of 9 aliases each
(`&b [*a, *a, ...]`, 9**7 = 4.8 million nodes once expanded) took 51 s and 1.2 GB to load, each
extra level x9 (the issue's 345-byte bomb: 8.8 s, 213 MB); a 50 MB config took 38 s. Each held the
reload lock and a core (and the GIL) that long, from `GET /api/reload/plan` without a token.

- `MAX_CONFIG_BYTES`: the production config is 4 KiB; 1 MiB leaves room for any hand-written file.
- `MAX_ALIAS_NODES`: how many nodes aliases may add to the document once expanded (a docker-compose
  style `<<: *defaults` in every service adds a handful each). Counting is one pass over the
  composed node graph, each distinct node visited once, so a bomb is refused in milliseconds, before
  the walk that would expand it. A recursive alias (`&a [*a]`) is refused the same way.

Errors name the line: where the file passes 1 MiB, or the node whose expansion passes the budget
(the innermost one, which is where the alias bomb's last level is written).
"""

from __future__ import annotations

import yaml

__all__ = ["MAX_ALIAS_NODES", "MAX_CONFIG_BYTES", "alias_problem", "size_problem"]

MAX_CONFIG_BYTES = 1024 * 1024
MAX_ALIAS_NODES = 100_000


def size_problem(data: bytes) -> tuple[int, str] | None:
    """(line, message) when `data` is over MAX_CONFIG_BYTES: the line where the limit is passed."""
    if len(data) <= MAX_CONFIG_BYTES:
        return None
    line = data[:MAX_CONFIG_BYTES].count(b"\n") + 1
    return line, (f"the config file passes 1 MiB ({MAX_CONFIG_BYTES} bytes) on this line; a config may be"
                  " at most 1 MiB")  # fmt: skip


def alias_problem(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """(node, message) when aliases would expand the document beyond the budget, or one refers to itself."""
    sizes: dict[int, int] = {}  # id(node) -> nodes in its expansion, itself included
    on_path = {id(root)}
    # Iterative depth-first walk (deeply nested brackets must not exhaust the stack); each distinct
    # node is entered once, scalars are counted without being entered.
    stack: list[tuple[yaml.Node, list[yaml.Node], int]] = [(root, _children(root), 0)]
    while stack:
        node, kids, i = stack[-1]
        if i < len(kids):
            stack[-1] = (node, kids, i + 1)
            child = kids[i]
            if id(child) in sizes:
                continue
            if id(child) in on_path:
                return child, "a recursive alias: this node contains an alias to itself"
            if isinstance(child, yaml.ScalarNode):
                sizes[id(child)] = 1
            else:
                on_path.add(id(child))
                stack.append((child, _children(child), 0))
            continue
        stack.pop()
        on_path.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(c)] for c in kids)
    if sizes[id(root)] - len(sizes) <= MAX_ALIAS_NODES:
        return None
    node = root
    while True:  # down to the innermost node whose expansion alone passes the budget
        bigger = [c for c in _children(node) if sizes[id(c)] > MAX_ALIAS_NODES]
        if not bigger:
            return node, (f"aliases here expand to {sizes[id(node)]:,} nodes; aliases may add at most"
                          f" {MAX_ALIAS_NODES:,} nodes to a config (an alias bomb?)")  # fmt: skip
        node = bigger[0]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
