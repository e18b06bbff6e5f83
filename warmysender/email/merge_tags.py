"""Merge tags: a locked-down python-liquid 2 environment per message part, and static analysis.

What this adds to stock python-liquid, and why:

- `MergeUndefined`: a name that resolves to nothing raises when it is *output* (strict), still
  yields to `| default:` and is simply false in `{% if %}` / `{% unless %}` / `{% case %}`, so
  `{% if custom.title %}` is a safe presence test.
- Resource limits (loop iterations, output size, `assign`/`capture` size, and sequence length
  for filters, which python-liquid does not limit: `{% assign r = (1..100000000) %}{{ r | join }}`
  would otherwise take many seconds and gigabytes). No `include`/`render` tags (there are no
  partials) and no `safe` filter (a prospect's data can never become markup).
- Every output statement (`{{ }}` and `echo`) passes its value through `spintax.protect`, because
  spintax runs after Liquid and must never spin a merge value such as a company called `A|B`.
- Syntax errors carry a position: python-liquid reports "found end of expression" errors
  with index -1, so our token streams place their end-of-input token at the end of the
  expression, and an unclosed block is reported at its opening tag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TextIO

from liquid import BlockNode, BoundTemplate, Environment, FalsyStrictUndefined, RenderContext
from liquid.builtin.expressions import (
    BooleanExpression,
    FilteredExpression,
    Path,
    tokenize,
)
from liquid.builtin.output import Output, OutputNode
from liquid.builtin.tags.case_tag import CaseNode, MultiExpressionBlockNode
from liquid.builtin.tags.echo_tag import EchoNode, EchoTag
from liquid.builtin.tags.liquid_tag import LiquidNode, LiquidTag
from liquid.exceptions import FilterArgumentError, LiquidError, LiquidSyntaxError
from liquid.parser import get_parser
from liquid.stream import TokenStream
from liquid.stringify import to_liquid_string
from liquid.token import TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_OUTPUT, TOKEN_TAG, Token

from warmysender.lib.spintax import protect

if TYPE_CHECKING:
    from liquid.ast import Node
    from liquid.expression import Expression

Part = Literal["subject", "body"]

# A cold email needs none of these to be large; they exist so a template cannot hang a worker or
# exhaust its memory.
LOOP_ITERATION_LIMIT = 10_000
SEQUENCE_ITEM_LIMIT = 10_000  # items a filter may receive (ranges, split results)
LOCAL_NAMESPACE_LIMIT = 200_000  # python-liquid's sys.getsizeof score of assign/capture values
SUBJECT_OUTPUT_LIMIT = 10_000  # bytes of UTF-8
BODY_OUTPUT_LIMIT = 500_000  # bytes of UTF-8; Gmail clips messages at about 100 KB anyway
BLOCK_NESTING_LIMIT = 30
CONTEXT_DEPTH_LIMIT = 10

_REMOVED_TAGS = ("include", "render")
_REMOVED_FILTERS = ("safe",)


class TemplateProblem(Exception):
    """A problem in the template itself: a Liquid syntax error, an unknown filter, a limit hit.

    `line` and `column` are 1-based positions within `part`; both are 0 when python-liquid gives
    no position (rare).
    """

    def __init__(self, *, part: Part, line: int, column: int, message: str) -> None:
        self.part: Part = part
        self.line = line
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line:
            return f"{self.part}, line {self.line}, column {self.column}: {self.message}"
        return f"{self.part}: {self.message}"

    def __repr__(self) -> str:
        return f"TemplateProblem({self!s})"


class MissingVariable(Exception):
    """A merge tag resolved to nothing and has no `default` filter.

    `name` is the custom field for `{{custom.x}}` and bare `{{x}}` (so "x"), the dotted path for
    anything else (`{{firstName.x}}`); `expression` is the path as written, for messages.
    """

    def __init__(self, *, name: str, expression: str, part: Part, line: int, column: int) -> None:
        self.name = name
        self.expression = expression
        self.part: Part = part
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f", line {self.line}, column {self.column}" if self.line else ""
        return (
            f"{self.part}{where}: {{{{{self.expression}}}}} has no value for this prospect "
            "and no default filter"
        )


class MergeUndefined(FalsyStrictUndefined):
    """Strict when output, false in conditions, replaced by `| default:`."""

    force_liquid_default = True


# --- output protection -----------------------------------------------------------------------


class _ProtectingOutputMixin:
    expression: Expression

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        value = self.expression.evaluate(context)
        return buffer.write(protect(to_liquid_string(value, context.autoescape)))

    async def render_to_output_async(self, context: RenderContext, buffer: TextIO) -> int:
        value = await self.expression.evaluate_async(context)
        return buffer.write(protect(to_liquid_string(value, context.autoescape)))


class _ProtectedOutputNode(_ProtectingOutputMixin, OutputNode):
    pass


class _ProtectedEchoNode(_ProtectingOutputMixin, EchoNode):
    pass


class _ProtectedOutput(Output):
    node_class = _ProtectedOutputNode

    def parse(self, stream: TokenStream) -> OutputNode:
        token = stream.eat(TOKEN_OUTPUT)
        expr_token = stream.expect(TOKEN_EXPRESSION)
        inner = _PositionedStream(tokenize(expr_token.value, expr_token), end=_end_of(expr_token))
        return self.node_class(token, FilteredExpression.parse(self.env, inner))


class _ProtectedEcho(EchoTag):
    node_class = _ProtectedEchoNode


# --- positions for "end of expression" errors --------------------------------------------------


def _end_of(token: Token) -> Token:
    return Token(TOKEN_EOF, TOKEN_EOF, token.start_index + len(token.value), token.source)


class _PositionedStream(TokenStream):
    """A token stream whose end-of-input token points at the end of what it covers."""

    def __init__(self, tokens: Iterable[Token], *, end: Token, block_depth_carry: int = 0):
        super().__init__(iter(tokens), block_depth_carry)
        self.eof = end

    def into_inner(self, *, tag: Token | None = None, eat: bool = True) -> TokenStream:
        token = self.current
        if token.kind != TOKEN_EXPRESSION:
            raise LiquidSyntaxError("missing expression", token=tag or token)
        if eat:
            next(self)
        return _PositionedStream(tokenize(token.value, parent_token=token), end=_end_of(token))


class _PositionedLiquidTag(LiquidTag):
    """`{% liquid %}` with the positioned stream for the lines inside it."""

    def parse(self, stream: TokenStream) -> LiquidNode:
        token = stream.eat(TOKEN_TAG)
        if stream.current.kind == TOKEN_EOF:
            return self.node_class(token, None, block=BlockNode(token, []))
        if stream.current.kind == TOKEN_TAG:
            return self.node_class(token, None, block=get_parser(self.env).parse_block(stream, ()))
        expr_token = stream.expect(TOKEN_EXPRESSION)
        inner = _PositionedStream(
            self._tokenize(expr_token.value, token=expr_token),
            end=_end_of(expr_token),
            block_depth_carry=stream.block_depth,
        )
        return self.node_class(token, expr_token, block=get_parser(self.env).parse_block(inner, ()))


# --- the environments -------------------------------------------------------------------------


def _limit_sequences(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps python-liquid's `with_environment`-style flags
    def limited(left: object, *args: object, **kwargs: object) -> object:
        for value in (left, *args, *kwargs.values()):
            if isinstance(value, range | list | tuple) and len(value) > SEQUENCE_ITEM_LIMIT:
                raise FilterArgumentError(
                    f"{name}: more than {SEQUENCE_ITEM_LIMIT} items", token=None
                )
        return func(left, *args, **kwargs)

    return limited


class MergeEnvironment(Environment):
    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATION_LIMIT
    local_namespace_limit: ClassVar[int | None] = LOCAL_NAMESPACE_LIMIT
    output_stream_limit: ClassVar[int | None] = BODY_OUTPUT_LIMIT
    context_depth_limit: ClassVar[int] = CONTEXT_DEPTH_LIMIT
    block_nesting_limit: ClassVar[int] = BLOCK_NESTING_LIMIT

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(undefined=MergeUndefined, autoescape=autoescape, strict_filters=True)

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in _REMOVED_TAGS:
            del self.tags[tag]
        for name in _REMOVED_FILTERS:
            del self.filters[name]
        self.filters = {name: _limit_sequences(name, f) for name, f in self.filters.items()}
        self.add_tag(_ProtectedOutput)
        self.add_tag(_ProtectedEcho)
        self.add_tag(_PositionedLiquidTag)

    def _parse(self, source: str) -> list[Node]:
        # Same as python-liquid's, with a stream whose end-of-input token has a position.
        end = Token(TOKEN_EOF, TOKEN_EOF, len(source), source)
        stream = _PositionedStream(self.tokenizer()(source), end=end)
        return get_parser(self).parse(stream)


class SubjectEnvironment(MergeEnvironment):
    output_stream_limit: ClassVar[int | None] = SUBJECT_OUTPUT_LIMIT


# Subject lines are plain text: values go in raw. The body is HTML: values are HTML-escaped
# unless they are `markupsafe.Markup` (only the sanitised signature is).
ENVIRONMENTS: dict[Part, MergeEnvironment] = {
    "subject": SubjectEnvironment(autoescape=False),
    "body": MergeEnvironment(autoescape=True),
}
OUTPUT_LIMITS: dict[Part, int] = {"subject": SUBJECT_OUTPUT_LIMIT, "body": BODY_OUTPUT_LIMIT}


# --- errors -------------------------------------------------------------------------------------


def line_and_column(source: str, index: int) -> tuple[int, int]:
    """1-based line and column of `index` in `source`; lines end at "\\n"."""
    line_start = source.rfind("\n", 0, index) + 1
    return source.count("\n", 0, index) + 1, index - line_start + 1


def _error_index(source: str, err: LiquidError) -> int | None:
    token = err.token
    if token is None or token.source != source or not 0 <= token.start_index <= len(source):
        return None
    return token.start_index


def problem_from_error(part: Part, source: str, err: LiquidError) -> TemplateProblem:
    index = _error_index(source, err)
    message = str(err.message)
    token = err.token
    if index == len(source) and message.startswith("expected tag end"):
        opener = _unclosed_block(ENVIRONMENTS[part], source)
        if opener is not None:
            name, index = opener
            message = f"'{{% {name} %}}' is never closed (expected '{{% end{name} %}}')"
    elif token is not None and token.kind == TOKEN_TAG and message == "missing expression":
        message = f"'{{% {token.value} %}}' is missing its expression"
    elif isinstance(err.__cause__, RecursionError):
        message = "the template is nested too deeply"
    if index is None:
        return TemplateProblem(part=part, line=0, column=0, message=message)
    line, column = line_and_column(source, index)
    return TemplateProblem(part=part, line=line, column=column, message=message)


def _unclosed_block(env: Environment, source: str) -> tuple[str, int] | None:
    """The innermost block tag opened in `source` and never closed, with its position."""
    blocks = {name for name, tag in env.tags.items() if tag.block}
    stack: list[tuple[str, int]] = []
    try:
        tokens = list(env.tokenizer()(source))
    except LiquidError:
        return None
    for token in tokens:
        if token.kind != TOKEN_TAG:
            continue
        if token.value in blocks:
            stack.append((token.value, token.start_index))
        elif token.value.startswith("end"):
            name = token.value[3:]
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == name:
                    del stack[depth:]
                    break
    return stack[-1] if stack else None


# --- parsing and analysis -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """One use of a variable that is not defined inside the template (`assign`, loop variable)."""

    segments: tuple[object, ...]
    index: int
    optional: bool  # has a `default` filter or is only tested in a condition


@dataclass(frozen=True)
class ParsedPart:
    part: Part
    source: str
    template: BoundTemplate
    references: tuple[Reference, ...]

    def reference_at(self, index: int) -> Reference | None:
        for reference in self.references:
            if reference.index == index:
                return reference
        return None


@functools.lru_cache(maxsize=128)
def parse_part(part: Part, source: str) -> ParsedPart:
    """Parse one part; raises TemplateProblem. Cached: a campaign renders the same steps often."""
    env = ENVIRONMENTS[part]
    try:
        template = env.from_string(source)
        analysis = template.analyze(include_partials=False)
    except LiquidError as err:
        raise problem_from_error(part, source, err) from None
    optional = _optional_indexes(template)
    references = tuple(
        Reference(
            segments=tuple(_flatten(variable.segments)),
            index=variable.span.index,
            optional=variable.span.index in optional,
        )
        for variables in analysis.globals.values()
        for variable in variables
    )
    for name, spans in analysis.filters.items():
        if name not in env.filters:
            line, column = line_and_column(source, spans[0].index)
            raise TemplateProblem(
                part=part, line=line, column=column, message=f"unknown filter '{name}'"
            )
    return ParsedPart(part=part, source=source, template=template, references=references)


def _flatten(segments: Iterable[object]) -> Iterable[object]:
    # A nested path (`custom[firstName]`) is a dynamic key: represent it as None.
    for segment in segments:
        yield None if isinstance(segment, list) else segment


def _optional_indexes(template: BoundTemplate) -> set[int]:
    """Positions of variable references that cannot raise when undefined.

    Those are the subject of a leading `default` filter and the variables compared in `if`,
    `unless`, `elsif`, `case` and `when` (MergeUndefined is false there). Everything else, such
    as an `assign` or a `for` over an undefined name, raises and so counts as required.
    """
    optional: set[int] = set()
    static_context = RenderContext(template)

    def visit_expression(expression: Expression, guarded: bool) -> None:
        if isinstance(expression, Path):
            if guarded:
                optional.add(expression.token.start_index)
            for child in expression.children():  # dynamic keys are evaluated strictly
                visit_expression(child, False)
            return
        if isinstance(expression, FilteredExpression):
            filters = expression.filters or []
            defaulted = bool(filters) and filters[0].name == "default"
            visit_expression(expression.left, guarded or defaulted)
            for filter_ in filters:
                for child in filter_.children():
                    visit_expression(child, False)
            return
        guarded = guarded or isinstance(expression, BooleanExpression)
        for child in expression.children():
            visit_expression(child, guarded)

    def visit_node(node: Node) -> None:
        guarded = isinstance(node, CaseNode | MultiExpressionBlockNode)
        for expression in node.expressions():
            visit_expression(expression, guarded)
        for child in node.children(static_context, include_partials=False):
            visit_node(child)

    for node in template.nodes:
        visit_node(node)
    return optional
