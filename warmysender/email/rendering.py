"""Render one email for one prospect: Liquid merge tags, then spintax, then HTML.

Pure functions, no database. The sequencing engine builds a context with `prospect_context()`,
renders with `render_email()` and maps the two failures onto enrollment states:

- `TemplateProblem` (syntax error, unknown filter, resource limit hit): the template must be
  fixed. `check_template()` finds the syntax ones before a campaign is saved or launched.
- `MissingVariable` (a merge tag without value and without `default`): the prospect's data or
  the template must be fixed. `missing_custom_fields()` finds the ones no enrolled prospect can
  satisfy before launch.

HTML escaping is done by Liquid's autoescape in the body environment: every merge value is
escaped on output except `markupsafe.Markup`, which only the sanitised `signature` is. The
subject environment does not escape (a subject is plain text) and sees the signature as text.
See docs/rendering.md.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from liquid.exceptions import LiquidError, UndefinedError
from markupsafe import Markup

from warmysender.email.merge_tags import (
    OUTPUT_LIMITS,
    MissingVariable,
    ParsedPart,
    Part,
    TemplateProblem,
    line_and_column,
    parse_part,
    problem_from_error,
)
from warmysender.email.sanitize import html_to_text, sanitize_html, signature_markup
from warmysender.lib import spintax

__all__ = [
    "BUILTIN_VARIABLES",
    "MissingVariable",
    "Preview",
    "ProspectLike",
    "Rendered",
    "Sender",
    "TemplateProblem",
    "check_template",
    "custom_fields_used",
    "missing_custom_fields",
    "preview",
    "prospect_context",
    "render_email",
    "variation_count",
]

PROSPECT_VARIABLES = (
    "firstName",
    "lastName",
    "fullName",
    "company",
    "role",
    "phone",
    "linkedinUrl",
    "website",
    "country",
    "city",
    "industry",
    "email",
)
SENDER_VARIABLES = ("sender_name", "sender_email", "signature")
BUILTIN_VARIABLES = frozenset({*PROSPECT_VARIABLES, *SENDER_VARIABLES, "custom"})


@dataclass(frozen=True)
class Sender:
    email: str
    name: str
    signature: str
    signature_is_html: bool


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Preview:
    rendered: Rendered
    # Spintax combinations of this prospect's merged subject and body (after merge tags, so
    # `{% if %}` branches not taken do not count).
    subject_variations: int
    body_variations: int


class ProspectLike(Protocol):
    """What rendering reads from a prospect (`warmysender.prospects.models.Prospect` fits)."""

    email: str
    first_name: str
    last_name: str
    company: str
    role: str
    phone: str
    linkedin_url: str
    website: str
    country: str
    city: str
    industry: str
    custom_fields: Mapping[str, object]


def prospect_context(prospect: ProspectLike, sender: Sender) -> dict[str, object]:
    """The merge-tag variables for one prospect sent from one mailbox.

    Built-in fields are always present (empty when unknown). Custom fields are under `custom`
    and also bare (`{{industry_news}}`) unless the name is a built-in. A custom field with an
    empty value is treated as absent, as the prospect services store it.
    """
    context: dict[str, object] = {
        "firstName": prospect.first_name or "",
        "lastName": prospect.last_name or "",
        "fullName": f"{prospect.first_name or ''} {prospect.last_name or ''}".strip(),
        "company": prospect.company or "",
        "role": prospect.role or "",
        "phone": prospect.phone or "",
        "linkedinUrl": prospect.linkedin_url or "",
        "website": prospect.website or "",
        "country": prospect.country or "",
        "city": prospect.city or "",
        "industry": prospect.industry or "",
        "email": prospect.email or "",
        "sender_name": sender.name,
        "sender_email": sender.email,
        "signature": signature_markup(sender.signature, is_html=sender.signature_is_html),
    }
    custom = {
        name: value
        for name, value in (prospect.custom_fields or {}).items()
        if value is not None and value != ""
    }
    context["custom"] = custom
    for name, value in custom.items():
        if name not in BUILTIN_VARIABLES:
            context[name] = value
    return context


def _subject_context(context: Mapping[str, object]) -> dict[str, object]:
    # The subject is text: the HTML signature (the only Markup value) goes in as its text.
    return {
        name: value.striptags() if isinstance(value, Markup) else value
        for name, value in context.items()
    }


def _merge(part: Part, source: str, context: Mapping[str, object]) -> str:
    """Step 1: Liquid. Merge values come out protected from spintax."""
    parsed = parse_part(part, spintax.strip_sentinels(source))
    try:
        return parsed.template.render(context)
    except UndefinedError as err:
        raise _missing_variable(parsed, err) from None
    except LiquidError as err:
        raise problem_from_error(part, parsed.source, err) from None
    except (ArithmeticError, ValueError, TypeError, RecursionError) as err:
        # A filter that python-liquid does not guard (a huge `times`, odd input to `date`).
        raise TemplateProblem(
            part=part, line=0, column=0, message=f"the template could not be rendered: {err}"
        ) from None


def _missing_variable(parsed: ParsedPart, err: UndefinedError) -> MissingVariable:
    token = err.token
    index = token.start_index if token is not None and token.source == parsed.source else -1
    reference = parsed.reference_at(index)
    if reference is not None:
        expression = ".".join("[]" if s is None else str(s) for s in reference.segments)
        name = _variable_name(reference.segments, expression)
    else:  # fall back on python-liquid's message, "'x' is undefined" or "custom.x is undefined"
        expression = str(err.message).removesuffix(" is undefined").strip("'")
        name = expression.removeprefix("custom.")
    line, column = line_and_column(parsed.source, index) if index >= 0 else (0, 0)
    return MissingVariable(
        name=name, expression=expression, part=parsed.part, line=line, column=column
    )


def _variable_name(segments: tuple[object, ...], expression: str) -> str:
    if len(segments) >= 2 and segments[0] == "custom" and isinstance(segments[1], str):
        return segments[1]
    if segments and segments[0] not in BUILTIN_VARIABLES:
        return str(segments[0])
    return expression


def _clean_subject(subject: str) -> str:
    return " ".join(subject.split())


def _finish(merged_subject: str, merged_body: str, rng: random.Random) -> Rendered:
    """Steps 2 and 3: spintax (subject first, then body), then sanitising and the text part."""
    subject = _clean_subject(spintax.spin(merged_subject, rng))
    html = sanitize_html(spintax.spin(merged_body, rng))
    return Rendered(subject=subject, html=html, text=html_to_text(html))


def render_email(
    *, subject: str, body_html: str, context: Mapping[str, object], rng: random.Random
) -> Rendered:
    """Render one email. Raises TemplateProblem or MissingVariable; nothing is sent half-done."""
    merged_subject = _merge("subject", subject, _subject_context(context))
    merged_body = _merge("body", body_html, context)
    return _finish(merged_subject, merged_body, rng)


def preview(
    *, subject: str, body_html: str, context: Mapping[str, object], seed: int = 0
) -> Preview:
    """Render with a seeded choice of spintax options, plus the number of variations.

    Raises the same exceptions as `render_email`, so the editor can show the line and column.
    """
    merged_subject = _merge("subject", subject, _subject_context(context))
    merged_body = _merge("body", body_html, context)
    return Preview(
        rendered=_finish(merged_subject, merged_body, random.Random(seed)),
        subject_variations=spintax.count_variations(merged_subject),
        body_variations=spintax.count_variations(merged_body),
    )


def _parts(subject: str, body_html: str) -> tuple[tuple[Part, str], ...]:
    return (("subject", subject), ("body", body_html))


def check_template(subject: str, body_html: str) -> list[TemplateProblem]:
    """Problems that block saving or launching: syntax, unknown filters, size. Empty when fine."""
    problems: list[TemplateProblem] = []
    for part, source in _parts(subject, body_html):
        try:
            parse_part(part, spintax.strip_sentinels(source))
        except TemplateProblem as problem:
            problems.append(problem)
            continue
        limit = OUTPUT_LIMITS[part]
        if len(source.encode()) > limit:
            problems.append(
                TemplateProblem(
                    part=part,
                    line=0,
                    column=0,
                    message=f"the {part} is longer than the {limit:,} bytes allowed",
                )
            )
    return problems


def _custom_field(segments: tuple[object, ...]) -> str | None:
    root = segments[0]
    if root == "custom":
        if len(segments) >= 2 and isinstance(segments[1], str):
            return segments[1]
        return None  # `custom` itself, or a dynamic key such as custom[firstName]
    if isinstance(root, str) and root not in BUILTIN_VARIABLES:
        return root
    return None


def _custom_references(subject: str, body_html: str) -> Iterable[tuple[str, bool]]:
    """(custom field, optional) for every custom-field reference. Raises TemplateProblem."""
    for part, source in _parts(subject, body_html):
        parsed = parse_part(part, spintax.strip_sentinels(source))
        for reference in parsed.references:
            name = _custom_field(reference.segments)
            if name is not None:
                yield name, reference.optional


def custom_fields_used(subject: str, body_html: str) -> set[str]:
    """Custom fields the template refers to, as `{{custom.x}}` or a bare `{{x}}`.

    Raises TemplateProblem when the template does not parse (check it first).
    """
    return {name for name, _optional in _custom_references(subject, body_html)}


def missing_custom_fields(templates: Iterable[tuple[str, str]], available: set[str]) -> list[str]:
    """Custom fields used without `default` (and not only in conditions) that are not in
    `available`, sorted. `templates` are (subject, body) pairs, `available` the union of the
    enrolled prospects' custom field names. Raises TemplateProblem on a syntax error.
    """
    required = {
        name
        for subject, body_html in templates
        for name, optional in _custom_references(subject, body_html)
        if not optional
    }
    return sorted(required - available)


def variation_count(text: str) -> int:
    """Spintax combinations of a template (Liquid markup is opaque), for the editor status bar."""
    return spintax.count_variations(text)
