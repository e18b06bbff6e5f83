from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import html as lxml_html

from warmysender.email.rendering import (
    MissingVariable,
    Rendered,
    Sender,
    TemplateProblem,
    check_template,
    custom_fields_used,
    missing_custom_fields,
    preview,
    prospect_context,
    render_email,
    variation_count,
)
from warmysender.lib.spintax import strip_sentinels
from warmysender.prospects.models import Prospect

SENDER = Sender(
    email="bob@sender.example",
    name="Bob Sender",
    signature="Bob Sender\nHead of Growth",
    signature_is_html=False,
)


def make_prospect(**overrides: Any) -> Prospect:
    fields: dict[str, Any] = {
        "email": "ann@acme.example",
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "Acme",
        "role": "CTO",
        "phone": "+49 30 1234",
        "linkedin_url": "https://www.linkedin.com/in/annlee",
        "website": "https://acme.example",
        "country": "Germany",
        "city": "Berlin",
        "industry": "Software",
        "custom_fields": {"title": "Dr", "pain_point": "slow builds"},
    }
    fields.update(overrides)
    return Prospect(**fields)  # never saved: rendering reads attributes only


def context(sender: Sender = SENDER, **overrides: Any) -> dict[str, object]:
    return prospect_context(make_prospect(**overrides), sender)


def render(
    body: str = "", subject: str = "", seed: int = 0, ctx: dict[str, object] | None = None
) -> Rendered:
    return render_email(
        subject=subject,
        body_html=body,
        context=context() if ctx is None else ctx,
        rng=random.Random(seed),
    )


# --- merge tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("firstName", "Ann"),
        ("lastName", "Lee"),
        ("fullName", "Ann Lee"),
        ("company", "Acme"),
        ("role", "CTO"),
        ("phone", "+49 30 1234"),
        ("linkedinUrl", "https://www.linkedin.com/in/annlee"),
        ("website", "https://acme.example"),
        ("country", "Germany"),
        ("city", "Berlin"),
        ("industry", "Software"),
        ("email", "ann@acme.example"),
        ("sender_name", "Bob Sender"),
        ("sender_email", "bob@sender.example"),
        ("custom.title", "Dr"),
        ("title", "Dr"),
        ("custom.pain_point", "slow builds"),
        ("pain_point", "slow builds"),
    ],
)
def test_every_merge_tag_renders_in_subject_and_body(tag: str, expected: str) -> None:
    rendered = render(subject=f"[{{{{{tag}}}}}]", body=f"<p>[{{{{ {tag} }}}}]</p>")
    assert rendered.subject == f"[{expected}]"
    assert rendered.html == f"<p>[{expected}]</p>"
    assert rendered.text == f"[{expected}]"


def test_an_empty_built_in_field_renders_empty() -> None:
    rendered = render(
        subject="Hi {{firstName}}!",
        body="<p>{{phone}}|{{company}}</p>",
        ctx=context(first_name="", phone="", company=""),
    )
    assert rendered.subject == "Hi !"
    assert rendered.html == "<p>|</p>"


def test_full_name_without_last_name_has_no_trailing_space() -> None:
    assert render(subject="[{{fullName}}]", ctx=context(last_name="")).subject == "[Ann]"


def test_a_custom_field_named_like_a_built_in_stays_under_custom() -> None:
    ctx = context(custom_fields={"company": "Custom Co", "city": "Paris"})
    rendered = render(subject="{{company}} {{custom.company}} {{city}} {{custom.city}}", ctx=ctx)
    assert rendered.subject == "Acme Custom Co Berlin Paris"


def test_a_prospect_without_custom_fields_still_has_an_empty_custom_mapping() -> None:
    ctx = context(custom_fields={})
    assert ctx["custom"] == {}
    assert (
        render(subject="{% if custom.title %}T{% else %}none{% endif %}", ctx=ctx).subject == "none"
    )


def test_numeric_custom_field_values_render() -> None:
    ctx = context(custom_fields={"employees": 120})
    assert (
        render(subject="{{custom.employees | plus: 1}} / {{employees}}", ctx=ctx).subject
        == "121 / 120"
    )


@pytest.mark.parametrize(
    ("subject", "overrides", "expected"),
    [
        ("Hi {{firstName | default: 'there'}}", {"first_name": ""}, "Hi there"),
        ("Hi {{firstName | default: 'there'}}", {}, "Hi Ann"),
        ("{{custom.subject_line | default: 'Quick question'}}", {}, "Quick question"),
        (
            "{{custom.subject_line | default: 'Quick question'}}",
            {"custom_fields": {"subject_line": "About your builds"}},
            "About your builds",
        ),
        ("{{subject_line | default: 'Quick question'}}", {}, "Quick question"),
        ("{{ custom.nick | default: firstName }}", {}, "Ann"),
        ("{{ custom.nick | default: custom.other | default: 'x' }}", {}, "x"),
        # An empty custom value counts as absent, as the prospect services store it.
        ("{{custom.title | default: 'Mx'}}", {"custom_fields": {"title": ""}}, "Mx"),
    ],
)
def test_default_filter_fills_in_empty_or_absent_values(
    subject: str, overrides: dict[str, Any], expected: str
) -> None:
    assert render(subject=subject, ctx=context(**overrides)).subject == expected


def test_conditions_on_absent_custom_fields_are_false_not_errors() -> None:
    body = (
        "{% if custom.nick %}nick{% else %}no nick{% endif %},"
        "{% unless custom.nick %}unless{% endunless %},"
        "{% if custom.nick == 'x' %}eq{% endif %}"
        "{% case custom.nick %}{% when 'a' %}A{% else %}case{% endcase %}"
    )
    assert render(subject=body).subject == "no nick,unless,case"


@pytest.mark.parametrize(
    ("part", "template", "name", "line", "column"),
    [
        ("body", "<p>Hi</p>\n<p>{{ custom.nickname }}</p>", "nickname", 2, 7),
        ("body", "{{nickname}}", "nickname", 1, 3),
        ("subject", "Re: {{custom.subject_line}}", "subject_line", 1, 7),
        ("body", "{{ custom.nickname | upcase }}", "nickname", 1, 4),
        ("body", "{% assign n = custom.nickname %}\n{{ n }}", "nickname", 1, 15),
        ("body", "{% for x in custom.tags %}{{ x }}{% endfor %}", "tags", 1, 13),
        ("body", "{{ firstName.initial }}", "firstName.initial", 1, 4),
        ("body", "{{ nickname.first }}", "nickname", 1, 4),
    ],
)
def test_a_value_missing_without_default_raises_missing_variable(
    part: str, template: str, name: str, line: int, column: int
) -> None:
    with pytest.raises(MissingVariable) as caught:
        if part == "body":
            render(body=template)
        else:
            render(subject=template)
    assert (caught.value.name, caught.value.part) == (name, part)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith(f"{part}, line {line}, column {column}: ")


def test_an_empty_custom_value_without_default_is_missing() -> None:
    with pytest.raises(MissingVariable) as caught:
        render(body="{{custom.title}}", ctx=context(custom_fields={"title": ""}))
    assert caught.value.name == "title"


# --- syntax errors and limits -------------------------------------------------------------------

MULTI_LINE_BODY = "<p>Hello {{firstName}},</p>\n<p>We help teams like yours.</p>\n"


@pytest.mark.parametrize(
    ("body", "line", "column", "message"),
    [
        (MULTI_LINE_BODY + "<p>Thanks, {{company}</p>", 3, 12, "expected '}}'"),
        (MULTI_LINE_BODY + "{% if %}x{% endif %}", 3, 4, "'{% if %}' is missing its expression"),
        (
            MULTI_LINE_BODY + "{% if firstName %}\n<p>unclosed</p>",
            3,
            4,
            "'{% if %}' is never closed (expected '{% endif %}')",
        ),
        (
            "{% for i in (1..2) %}\n  {% if a %}{% endif %}\n",
            1,
            4,
            "'{% for %}' is never closed",
        ),
        (MULTI_LINE_BODY + "  {{ firstName | }}", 3, 17, "expected word"),
        (MULTI_LINE_BODY + "{{ }}", 3, 3, "expected a primitive expression"),
        (MULTI_LINE_BODY + "x {{ firstName | shout }}", 3, 18, "unknown filter 'shout'"),
        (MULTI_LINE_BODY + "{% endif %}", 3, 4, "unexpected tag 'endif'"),
        ("{% include 'footer' %}", 1, 4, "unexpected tag 'include'"),
        ("{{ company | safe }}", 1, 14, "unknown filter 'safe'"),
        ("{% liquid\nassign a = 1\necho a |\n%}", 3, 9, "expected word"),
    ],
)
def test_syntax_errors_report_line_and_column_within_the_part(
    body: str, line: int, column: int, message: str
) -> None:
    problems = check_template("Fine subject {{firstName}}", body)
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.part, problem.line, problem.column) == ("body", line, column)
    assert message in problem.message
    assert str(problem) == f"body, line {line}, column {column}: {problem.message}"
    with pytest.raises(TemplateProblem) as caught:
        render(body=body)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_check_template_reports_both_parts_and_nothing_for_good_templates() -> None:
    assert check_template("Hi {{firstName | default: 'there'}}", MULTI_LINE_BODY) == []
    problems = check_template("Hi {{firstName}", "{% if %}")
    assert [(p.part, p.line, p.column) for p in problems] == [("subject", 1, 4), ("body", 1, 4)]
    assert str(problems[0]) == "subject, line 1, column 4: expected '}}', found end of file"


def test_check_template_refuses_a_body_over_the_output_limit() -> None:
    problems = check_template("s", "x" * 500_001)
    assert [p.message for p in problems] == ["the body is longer than the 500,000 bytes allowed"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{% for i in (1..100000000) %}x{% endfor %}", "loop iteration limit reached"),
        (
            "{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}",
            "loop iteration limit reached",
        ),
        ("{% tablerow i in (1..100000000) %}{% endtablerow %}", "loop iteration limit reached"),
        ("{% assign r = (1..100000000) %}{{ r | join: ',' }}", "join: more than 10000 items"),
        ("{% for i in (1..9000) %}" + "x" * 100 + "{% endfor %}", "output stream limit reached"),
        (
            "{% capture c %}{% for i in (1..9000) %}" + "x" * 100 + "{% endfor %}{% endcapture %}",
            "output stream limit reached",
        ),
        (
            "{% assign s = 'aaaaaaaaaa' %}{% for i in (1..60) %}{% assign s = s | append: s %}"
            "{% endfor %}",
            "local namespace limit reached",
        ),
        ("{{ 1 | divided_by: 0 }}", "divided_by: can't divide by 0"),
    ],
)
def test_runaway_templates_stop_with_a_template_problem(body: str, message: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render(body=body)
    assert message in caught.value.message
    assert caught.value.part == "body"
    assert caught.value.line == 1


def test_the_subject_has_its_own_smaller_output_limit() -> None:
    subject = "{% for i in (1..200) %}" + "y" * 100 + "{% endfor %}"
    render(body=subject)  # 20 KB is fine in a body
    with pytest.raises(TemplateProblem) as caught:
        render(subject=subject)
    assert caught.value.part == "subject"
    assert "output stream limit reached" in caught.value.message


# --- HTML escaping and sanitising ---------------------------------------------------------------


def test_merge_values_are_escaped_in_the_body_and_raw_in_the_subject() -> None:
    ctx = context(company="<b>A&B</b>", first_name='"><script>alert(1)</script>')
    rendered = render(subject="{{company}} {{firstName}}", body="<p>{{company}}</p>", ctx=ctx)
    assert rendered.html == "<p>&lt;b&gt;A&amp;B&lt;/b&gt;</p>"
    assert rendered.text == "<b>A&B</b>"
    assert rendered.subject == '<b>A&B</b> "><script>alert(1)</script>'


def test_a_merge_value_cannot_break_out_of_an_attribute() -> None:
    ctx = context(website='https://x.example" onmouseover="alert(1)')
    rendered = render(body='<a href="{{website}}">site</a>', ctx=ctx)
    anchor = lxml_html.fragment_fromstring(rendered.html)
    assert anchor.tag == "a"
    assert set(anchor.attrib) <= {"href", "rel"}  # the quote stayed inside the (dropped) URL


def test_a_text_signature_becomes_html_with_line_breaks() -> None:
    sender = Sender(
        email="b@x.example", name="Bob", signature="Bob <Sales>\nAcme & Co", signature_is_html=False
    )
    rendered = render(
        subject="{{signature}}", body="<p>Thanks</p>{{signature}}", ctx=context(sender)
    )
    assert rendered.html == "<p>Thanks</p>Bob &lt;Sales&gt;<br>\nAcme &amp; Co"
    assert rendered.text == "Thanks\n\nBob <Sales>\nAcme & Co"
    assert rendered.subject == "Bob <Sales> Acme & Co"


def test_an_html_signature_is_sanitised_not_escaped() -> None:
    sender = Sender(
        email="b@x.example",
        name="Bob",
        signature='<p onclick="steal()"><b>Bob</b></p><script>alert(1)</script>',
        signature_is_html=True,
    )
    rendered = render(subject="-- {{signature}}", body="{{signature}}", ctx=context(sender))
    assert rendered.html == "<p><b>Bob</b></p>"
    assert rendered.subject == "-- Bob"


@pytest.mark.parametrize(
    ("body", "expected_html"),
    [
        ("<p>Hi</p><script>alert(1)</script>", "<p>Hi</p>"),
        ('<p onclick="x()" onmouseover="y()">Hi</p>', "<p>Hi</p>"),
        ("<style>p { color: red }</style><p>Hi</p>", "<p>Hi</p>"),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
        (
            '<a href="https://acme.example/p">x</a>',
            '<a href="https://acme.example/p" rel="noopener noreferrer">x</a>',
        ),
        (
            '<a href="mailto:a@acme.example">x</a>',
            '<a href="mailto:a@acme.example" rel="noopener noreferrer">x</a>',
        ),
        (
            '<a href="www.acme.example">x</a>',
            '<a href="https://www.acme.example" rel="noopener noreferrer">x</a>',
        ),
        ('<a href="/pricing">x</a>', '<a rel="noopener noreferrer">x</a>'),
        (
            '<img src="https://cdn.acme.example/logo.png" alt="Logo" width="300" height="80" onerror="x()">',
            '<img src="https://cdn.acme.example/logo.png" alt="Logo" width="300" height="80">',
        ),
        ('<img src="http://cdn.acme.example/logo.png" alt="Logo">', '<img alt="Logo">'),
        ('<img src="data:image/png;base64,AAAA" alt="Logo">', '<img alt="Logo">'),
        (
            '<p style="color: red; position: fixed; display: none">Hi</p>',
            '<p style="color:red">Hi</p>',
        ),
        ("<form><input name=q>Hi</form><iframe src='https://x.example'></iframe>", "Hi"),
        (
            "<ul><li>one</li></ul><table><tr><td>a</td></tr></table>",
            "<ul><li>one</li></ul><table><tbody><tr><td>a</td></tr></tbody></table>",
        ),
        ("<p>a<!-- hidden -->b</p>", "<p>ab</p>"),
    ],
)
def test_the_body_is_sanitised(body: str, expected_html: str) -> None:
    assert render(body=body).html == expected_html


def test_the_text_part_keeps_links_readable() -> None:
    body = (
        '<p>See <a href="https://acme.example/pricing">our pricing</a> or '
        '<a href="https://acme.example">https://acme.example</a>.</p>'
        '<p><a href="mailto:ann@acme.example">mail me</a></p><ul><li>one</li><li>two</li></ul>'
    )
    assert render(body=body).text == (
        "See our pricing (https://acme.example/pricing) or https://acme.example.\n\n"
        "mail me (ann@acme.example)\n\n  * one\n  * two"
    )


def test_the_subject_is_one_line() -> None:
    rendered = render(subject="  Hello\r\n  {{firstName}}\n\tagain  ")
    assert rendered.subject == "Hello Ann again"


# --- spintax after merge tags -------------------------------------------------------------------


def test_spintax_in_subject_and_body_is_spun() -> None:
    subjects = set()
    bodies = set()
    for seed in range(40):
        rendered = render(
            subject="{Hi|Hello} {{firstName}}", body="<p>{one|two|{three|four}}</p>", seed=seed
        )
        subjects.add(rendered.subject)
        bodies.add(rendered.html)
    assert subjects == {"Hi Ann", "Hello Ann"}
    assert bodies == {f"<p>{word}</p>" for word in ("one", "two", "three", "four")}


def test_a_merge_value_with_spintax_syntax_is_never_spun() -> None:
    ctx = context(company="{Acme|Evil}", first_name="A|B", last_name="{x}")
    outputs = {
        render(
            subject="{{company}} {{firstName}}",
            body="<p>{{company}} {{fullName}}</p>",
            seed=seed,
            ctx=ctx,
        )
        for seed in range(20)
    }
    assert outputs == {
        Rendered(
            subject="{Acme|Evil} A|B",
            html="<p>{Acme|Evil} A|B {x}</p>",
            text="{Acme|Evil} A|B {x}",
        )
    }


def test_a_merge_value_inside_a_spintax_option_stays_whole() -> None:
    ctx = context(company="A|B")
    subjects = {
        render(subject="{Hi {{company}}|Hello}", seed=seed, ctx=ctx).subject for seed in range(30)
    }
    assert subjects == {"Hi A|B", "Hello"}


def test_liquid_filters_inside_spintax_options_are_not_option_separators() -> None:
    ctx = context(first_name="")
    subjects = {
        render(
            subject="{Hi {{firstName | default: 'there'}}|Hey {{ company | upcase }}}",
            seed=seed,
            ctx=ctx,
        ).subject
        for seed in range(30)
    }
    assert subjects == {"Hi there", "Hey ACME"}


def test_sentinel_characters_in_a_template_cannot_forge_spintax() -> None:
    assert render(subject="\ufdd0a\ufdd1b\ufdd2").subject == "ab"


def test_rendering_is_reproducible_for_a_seed() -> None:
    body = "<p>{a|b|c} {d|e|f} {g|h|i}</p>"
    assert render(body=body, seed=5) == render(body=body, seed=5)


# Prospect data biased towards what could be mistaken for syntax: spintax, Liquid, HTML.
TRICKY_VALUES = st.lists(
    st.one_of(
        st.sampled_from(["{", "|", "}", "{{", "}}", "{%", "<b>", "</b>", "<", ">", "&", '"', " "]),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=20,
).map("".join)


@given(TRICKY_VALUES)
@example("{Acme|Evil}")
@example("{% if x %}{{ firstName }}")
def test_any_merge_value_is_printed_verbatim_in_the_subject(value: str) -> None:
    ctx = context(company=value)
    rendered = render(subject="{{company}}", ctx=ctx)
    assert rendered.subject == " ".join(strip_sentinels(value).split())


@given(TRICKY_VALUES)
@example("<b>A&B</b>")
def test_no_merge_value_adds_markup_to_the_body(value: str) -> None:
    rendered = render(body="<p>{{company}}</p>", ctx=context(company=value))
    paragraph = lxml_html.fragment_fromstring(rendered.html)
    assert paragraph.tag == "p"
    assert len(paragraph) == 0  # no child elements: the value stayed text


# --- variation counts and preview ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Hello {{firstName}}", 1),
        ("{Hi|Hello} {there|friend}", 4),
        ("{Hi|Hello} {{firstName | default: 'there'}}", 2),
        ("{a|{b|c}} {d|e}", 6),
        ("{% if x %}{a|b}{% else %}{c|d|e}{% endif %}", 6),
        ("p{color:red}", 1),
    ],
)
def test_variation_count(text: str, count: int) -> None:
    assert variation_count(text) == count


def test_preview_is_seeded_and_counts_the_variations_of_the_merged_text() -> None:
    kwargs: dict[str, Any] = {
        "subject": "{Hi|Hello} {{firstName}}",
        "body_html": "<p>{a|b|c}</p>{% if custom.nick %}{x|y}{% endif %}",
        "context": context(),
    }
    first = preview(**kwargs)
    assert first == preview(**kwargs, seed=0)
    assert first.rendered.subject in {"Hi Ann", "Hello Ann"}
    assert (first.subject_variations, first.body_variations) == (2, 3)
    assert {preview(**kwargs, seed=seed).rendered.html for seed in range(30)} == {
        "<p>a</p>",
        "<p>b</p>",
        "<p>c</p>",
    }


def test_preview_raises_like_render() -> None:
    with pytest.raises(TemplateProblem):
        preview(subject="{{x}", body_html="", context=context())
    with pytest.raises(MissingVariable):
        preview(subject="{{custom.nope}}", body_html="", context=context())


# --- custom-field analysis ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "used"),
    [
        ("Hi {{firstName}}", "{{company}} {{signature}} {{sender_name}}", set()),
        (
            "{{custom.subject_line | default: 'Quick'}}",
            "{{ custom.first_line }}",
            {"subject_line", "first_line"},
        ),
        ("", "{{ pain_point }} {{ custom['cta'] }}", {"pain_point", "cta"}),
        ("", "{% if custom.nick %}{{ custom.nick }}{% endif %}", {"nick"}),
        (
            "",
            "{% assign t = custom.title %}{{ t }}{% for i in (1..2) %}{{ i }}{{ forloop.index }}{% endfor %}",
            {"title"},
        ),
        ("", "{{ custom[firstName] }} {{ custom }}", set()),
        ("", "{{ nickname.first }}", {"nickname"}),
    ],
)
def test_custom_fields_used(subject: str, body: str, used: set[str]) -> None:
    assert custom_fields_used(subject, body) == used


@pytest.mark.parametrize(
    ("templates", "available", "missing"),
    [
        ([("{{custom.a}}", "{{b}}")], set(), ["a", "b"]),
        ([("{{custom.a}}", "{{b}}")], {"a"}, ["b"]),
        ([("{{custom.a | default: 'x'}}", "{{b | default: ''}}")], set(), []),
        ([("", "{% if custom.a %}yes{% endif %}{% case b %}{% when 1 %}{% endcase %}")], set(), []),
        ([("", "{% if custom.a %}{{ custom.a }}{% endif %}")], set(), ["a"]),
        ([("", "{{ custom.a | upcase | default: 'x' }}")], set(), ["a"]),  # default must come first
        ([("", "{% assign t = custom.a %}{{ t | default: 'x' }}")], set(), ["a"]),
        ([("{{custom.z}}", ""), ("", "{{custom.y}} {{ custom.z }}")], {"x"}, ["y", "z"]),
        ([("Hi {{firstName}} {{signature}}", "{{ company }}")], set(), []),
    ],
)
def test_missing_custom_fields(
    templates: list[tuple[str, str]], available: set[str], missing: list[str]
) -> None:
    assert missing_custom_fields(templates, available) == missing


def test_missing_custom_fields_agrees_with_what_rendering_raises() -> None:
    # A field the static check lets through must render; one it reports must raise.
    body = (
        "{{custom.a | default: 'x'}}{% if custom.b %}{{custom.b}}{% endif %}"
        "{% unless custom.c %}{% endunless %}{{ custom.d }}"
    )
    assert missing_custom_fields([("", body)], set()) == ["b", "d"]
    with pytest.raises(MissingVariable) as caught:
        render(body=body)
    assert caught.value.name == "d"
    render(body=body, ctx=context(custom_fields={"d": "ok"}))


def test_analysis_of_a_broken_template_raises_the_problem() -> None:
    with pytest.raises(TemplateProblem):
        custom_fields_used("{{x}", "")
    with pytest.raises(TemplateProblem):
        missing_custom_fields([("", "{% if %}")], set())
