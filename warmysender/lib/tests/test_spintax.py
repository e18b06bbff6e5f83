from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmysender.lib import spintax
from warmysender.lib.spintax import MAX_NESTING, Block, count_variations, expand, parse, spin


@pytest.mark.parametrize(
    ("text", "variations"),
    [
        ("Hello world", ["Hello world"]),
        ("", [""]),
        ("{Hi|Hello} {there|friend}", ["Hi there", "Hi friend", "Hello there", "Hello friend"]),
        ("{a|b|c}", ["a", "b", "c"]),
        ("{a|{b|c}}", ["a", "b", "c"]),
        ("{a|{b|c}|d}", ["a", "b", "c", "d"]),
        ("{x|y}{a|{b|c}}", ["xa", "xb", "xc", "ya", "yb", "yc"]),
        ("{Hi |}there", ["Hi there", "there"]),
        ("{|}", ["", ""]),
        ("{{a|b}|c}", ["{{a|b}|c}"]),  # `{{` opens Liquid, never spintax
        # Braces without a pipe at their level are literal; their content is still spun.
        ("p{color:red}", ["p{color:red}"]),
        ('{"key": 1}', ['{"key": 1}']),
        ("{x {a|b}}", ["{x a}", "{x b}"]),
        ("{a|{b}}", ["a", "{b}"]),
        # Unbalanced braces stay literal.
        ("{", ["{"]),
        ("}", ["}"]),
        ("}{", ["}{"]),
        ("a { b", ["a { b"]),
        ("{a|b", ["{a|b"]),
        ("a|b}", ["a|b}"]),
        ("{a|b {c|d}", ["{a|b c", "{a|b d"]),
        ("{a|b}}", ["a}", "b}"]),
        # Liquid markup is opaque: its pipes are filters, not options.
        ("{{ firstName | default: 'there' }}", ["{{ firstName | default: 'there' }}"]),
        ("{% if a %}{x|y}{% endif %}", ["{% if a %}x{% endif %}", "{% if a %}y{% endif %}"]),
        ("{Hi {{ name | upcase }}|Hello}", ["Hi {{ name | upcase }}", "Hello"]),
        ("{a|{{x}}}", ["a", "{{x}}"]),
        ("{{ never closed {a|b}", ["{{ never closed a", "{{ never closed b"]),
    ],
)
def test_it_spins_into_one_of_the_variations(text: str, variations: list[str]) -> None:
    assert list(expand(text)) == variations
    assert count_variations(text) == len(variations)
    outputs = {spin(text, random.Random(seed)) for seed in range(60)}
    assert outputs <= set(variations)
    assert outputs == set(variations)  # 60 seeded draws reach every option of these small texts


def test_parse_builds_blocks_and_merges_literal_text() -> None:
    assert parse("Hi {a|{b|c}} x{y}z") == (
        "Hi ",
        Block((("a",), (Block((("b",), ("c",))),))),
        " x{y}z",
    )


def test_it_is_reproducible_with_a_seeded_rng() -> None:
    text = "{a|b|c|d} {e|f|g|h} {i|j|k|l}"
    assert spin(text, random.Random(7)) == spin(text, random.Random(7))
    assert len({spin(text, random.Random(seed)) for seed in range(20)}) > 1


def test_it_draws_randomness_only_for_blocks_it_visits() -> None:
    # The nested block of an option not taken draws nothing, so later choices do not shift.
    for seed in range(50):
        reference = random.Random(seed)
        outer = reference.randrange(2)
        first = "a" if outer == 0 else "bc"[reference.randrange(2)]
        expected = first + "wxyz"[reference.randrange(4)]
        assert spin("{a|{b|c}}{w|x|y|z}", random.Random(seed)) == expected


def test_protected_text_is_never_spun_and_comes_back_intact() -> None:
    value = "{Acme|Evil} Inc | {x}"
    text = "Hi " + spintax.protect(value) + " {a|b}"
    assert count_variations(text) == 2
    assert {spin(text, random.Random(seed)) for seed in range(30)} == {
        f"Hi {value} a",
        f"Hi {value} b",
    }


def test_protect_drops_sentinels_already_in_the_text() -> None:
    smuggled = "\ufdd0a\ufdd1b\ufdd2"
    assert spin(spintax.protect(smuggled), random.Random(0)) == "ab"
    assert spintax.strip_sentinels(smuggled) == "ab"


def test_nesting_deeper_than_the_limit_is_literal() -> None:
    depth = MAX_NESTING + 8
    text = "{ " * depth + "a|b" + " }" * depth
    assert count_variations(text) == 1
    assert spin(text, random.Random(0)) == text


def test_nesting_at_the_limit_still_spins() -> None:
    text = "{a|" * MAX_NESTING + "z" + "}" * MAX_NESTING
    assert count_variations(text) == MAX_NESTING + 1
    assert spin(text, random.Random(1)) in {"a", "z"}


@pytest.mark.parametrize(
    "text",
    ["{" * 50_000, "}" * 50_000, "{a|" * 20_000, "{{" * 20_000 + "|", "{%" * 20_000],
)
def test_pathological_input_is_handled_without_error(text: str) -> None:
    spin(text, random.Random(0))
    count_variations(text)


def test_variation_count_multiplies_blocks_and_adds_nested_options() -> None:
    assert count_variations("{a|b} {c|d|e} {f|{g|h|i}}") == 2 * 3 * 4
    assert count_variations("{a|b}" * 100) == 2**100


# --- properties ---------------------------------------------------------------------------------

NO_SENTINELS = st.characters(exclude_characters="\ufdd0\ufdd1\ufdd2", exclude_categories=["Cs"])


@given(st.text(alphabet=NO_SENTINELS).filter(lambda t: "{" not in t and "}" not in t))
def test_text_without_braces_is_unchanged(text: str) -> None:
    assert spin(text, random.Random(0)) == text
    assert count_variations(text) == 1


# Shapes of spintax: "lit" is a literal, ("block", options) a block of at least two options, each
# option a list of shapes. Labels are assigned when the source is built, one unique label per
# literal and per option, so different choices can never produce the same text.
SHAPES = st.recursive(
    st.just("lit"),
    lambda children: st.tuples(
        st.just("block"), st.lists(st.lists(children, max_size=3), min_size=2, max_size=3)
    ),
    max_leaves=10,
)


def _build(shapes: list, labels: Iterator[str]) -> tuple[str, list[str]]:
    source: list[str] = []
    pools: list[list[str]] = []
    for shape in shapes:
        if shape == "lit":
            label = next(labels)
            source.append(label)
            pools.append([label])
            continue
        option_sources: list[str] = []
        variations: list[str] = []
        for option in shape[1]:
            own = next(labels)
            option_source, option_variations = _build(option, labels)
            option_sources.append(own + option_source)
            variations.extend(own + v for v in option_variations)
        source.append("{" + "|".join(option_sources) + "}")
        pools.append(variations)
    return "".join(source), ["".join(parts) for parts in itertools.product(*pools)]


def _labels() -> Iterator[str]:
    return (f"<{i}>" for i in itertools.count())


@settings(max_examples=200)
@given(st.lists(SHAPES, max_size=4), st.integers(min_value=0, max_value=2**32))
def test_spun_output_is_one_enumerated_variation_without_spintax_left(
    shapes: list, seed: int
) -> None:
    source, variations = _build(shapes, _labels())
    output = spin(source, random.Random(seed))
    assert output in variations
    assert not any(ch in output for ch in "{|}")


@settings(max_examples=200)
@given(st.lists(SHAPES, max_size=4))
def test_variation_count_equals_the_number_of_distinct_variations(shapes: list) -> None:
    source, variations = _build(shapes, _labels())
    assert len(set(variations)) == len(variations)  # the generator's promise
    assert count_variations(source) == len(variations)
    assert sorted(expand(source)) == sorted(variations)


@settings(max_examples=300)
@given(st.text(alphabet="{|}ab %", max_size=24), st.integers(min_value=0, max_value=2**32))
def test_any_brace_soup_spins_to_an_enumerated_variation(text: str, seed: int) -> None:
    enumerated = list(expand(text))
    assert len(enumerated) == count_variations(text)
    assert spin(text, random.Random(seed)) in enumerated


@given(
    st.text(),
    st.text(alphabet="{|}ab", max_size=12),
    st.text(alphabet="{|}ab", max_size=12),
    st.integers(min_value=0, max_value=2**32),
)
def test_a_protected_value_behaves_like_a_plain_word(
    value: str, left: str, right: str, seed: int
) -> None:
    # Whatever braces and pipes the value holds, spinning treats it exactly like the word "Q".
    with_value = spin(left + spintax.protect(value) + right, random.Random(seed))
    with_word = spin(left + "Q" + right, random.Random(seed))
    assert with_value == with_word.replace("Q", spintax.strip_sentinels(value))
