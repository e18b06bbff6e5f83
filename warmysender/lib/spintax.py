"""Spintax: `{Hi|Hello} there` becomes "Hi there" or "Hello there", one pick per render.

Grammar, decided for email content rather than taken from a library:

- A block is a balanced `{ ... }` with at least one `|` at its own level: `{a|b|c}`. Options may
  be empty (`{Hi |}`) and may nest blocks: `{a|{b|c}}` gives a, b or c.
- Braces without a `|` at their level are literal text, their content is still processed:
  `a{color:red}` and `{"k": 1}` stay as they are, `{x {a|b}}` gives "{x a}" or "{x b}".
- Liquid markup, `{{ ... }}` and `{% ... %}`, is opaque text: a `|` filter inside it never splits
  an option, so the editor can count variations of a template before merge tags are resolved.
- Unbalanced braces are literal; nothing here raises on any input.
- Blocks nest at most `MAX_NESTING` levels; braces deeper than that are literal text.
- Text passed through `protect()` is never spun. The renderer protects every merge-tag value, so a
  prospect whose company is `A|B` or `{Acme}` is printed as is.

`spin()` consumes randomness only for the blocks it actually visits, so a seeded `random.Random`
gives the same email every time (previews use that).
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

MAX_NESTING = 32

# Unicode noncharacters, reserved for exactly this kind of internal use: a protected `{`, `|`, `}`.
_SENTINELS = "\ufdd0\ufdd1\ufdd2"
_PROTECT = str.maketrans({"{": "\ufdd0", "|": "\ufdd1", "}": "\ufdd2"})
_RESTORE = str.maketrans({"\ufdd0": "{", "\ufdd1": "|", "\ufdd2": "}"})
_DROP_SENTINELS = str.maketrans(dict.fromkeys(_SENTINELS))

_SPECIAL = re.compile(r"\{\{|\{%|[{|}]")


@dataclass(frozen=True)
class Block:
    """A spintax block: one of `options` is chosen, each option a sequence of nodes."""

    options: tuple[tuple[Node, ...], ...]


Node = str | Block


def protect(text: str) -> str:
    """Return `text` in a form `spin()` emits verbatim (braces and pipes are not syntax in it).

    `spin()` restores the original characters in its output. Sentinel characters already present in
    `text` are dropped first so the round trip is exact for everything else.
    """
    return text.translate(_DROP_SENTINELS).translate(_PROTECT)


def strip_sentinels(text: str) -> str:
    """Remove the protection sentinels, so a template cannot smuggle them in."""
    return text.translate(_DROP_SENTINELS)


def restore(text: str) -> str:
    """Undo `protect()` (done by `spin()` on its output)."""
    return text.translate(_RESTORE)


@dataclass
class _Frame:
    """An open `{` while parsing: the options collected so far."""

    options: list[list[Node]] = field(default_factory=lambda: [[]])


def _append(target: list[Node], node: Node) -> None:
    if isinstance(node, str):
        if not node:
            return
        if target and isinstance(target[-1], str):
            target[-1] += node
            return
    target.append(node)


def parse(text: str) -> tuple[Node, ...]:
    """Parse `text` into literal strings and `Block`s. Never raises.

    A single pass with an explicit stack, so deeply nested or unbalanced input costs linear time
    and no recursion.
    """
    root: list[Node] = []
    frames: list[_Frame] = []
    ignored_depth = 0  # open braces beyond MAX_NESTING, matched literally

    def current() -> list[Node]:
        return frames[-1].options[-1] if frames else root

    position = 0
    for match in _SPECIAL.finditer(text):
        start = match.start()
        if start < position:  # inside a Liquid span consumed below
            continue
        _append(current(), text[position:start])
        token = match.group()
        position = match.end()
        if token in ("{{", "{%"):
            closing = "}}" if token == "{{" else "%}"
            end = text.find(closing, position)
            if end == -1:
                _append(current(), token)
            else:
                _append(current(), text[start : end + 2])
                position = end + 2
        elif token == "{":
            if ignored_depth or len(frames) >= MAX_NESTING:
                ignored_depth += 1
                _append(current(), token)
            else:
                frames.append(_Frame())
        elif not frames or ignored_depth:
            if token == "}" and ignored_depth:
                ignored_depth -= 1
            _append(current(), token)
        elif token == "|":
            frames[-1].options.append([])
        else:  # "}" closing the innermost open block
            frame = frames.pop()
            _close(frame, current())
    _append(current(), text[position:])

    # Whatever is still open was never closed: its braces and pipes are plain text.
    while frames:
        frame = frames.pop()
        target = current()
        _append(target, "{")
        for index, option in enumerate(frame.options):
            if index:
                _append(target, "|")
            for node in option:
                _append(target, node)
    return tuple(root)


def _close(frame: _Frame, target: list[Node]) -> None:
    if len(frame.options) > 1:
        target.append(Block(tuple(tuple(option) for option in frame.options)))
        return
    _append(target, "{")
    for node in frame.options[0]:
        _append(target, node)
    _append(target, "}")


def _as_nodes(text_or_nodes: str | Sequence[Node]) -> Sequence[Node]:
    return parse(text_or_nodes) if isinstance(text_or_nodes, str) else text_or_nodes


def spin(text: str, rng: random.Random) -> str:
    """Resolve every block of `text` with `rng`; protected text comes back restored."""
    out: list[str] = []
    _spin_into(parse(text), rng, out)
    return restore("".join(out))


def _spin_into(nodes: Sequence[Node], rng: random.Random, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        else:
            _spin_into(node.options[rng.randrange(len(node.options))], rng, out)


def count_variations(text_or_nodes: str | Sequence[Node]) -> int:
    """How many texts `spin()` can produce, counting choices (identical options count twice).

    The product over the blocks in sequence of, per block, the sum over its options.
    """
    return math.prod(
        sum(count_variations(option) for option in node.options)
        for node in _as_nodes(text_or_nodes)
        if isinstance(node, Block)
    )


def expand(text_or_nodes: str | Sequence[Node]) -> Iterator[str]:
    """Every variation, in option order, one per choice (duplicates included).

    Combinations are produced lazily; each block's own options are expanded in memory, so this is
    meant for small texts (tests, "show me all variations" for a subject line).
    """
    for variation in _expand(_as_nodes(text_or_nodes)):
        yield restore(variation)


def _expand(nodes: Sequence[Node]) -> Iterator[str]:
    pools: list[tuple[str, ...]] = []
    for node in nodes:
        if isinstance(node, str):
            pools.append((node,))
        else:
            pools.append(
                tuple(itertools.chain.from_iterable(_expand(option) for option in node.options))
            )
    for combination in itertools.product(*pools):
        yield "".join(combination)
