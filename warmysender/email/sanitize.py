"""The HTML step: sanitise the body with nh3, derive the plain-text part with inscriptis.

The allow-list is what an email editor produces (formatting, lists, tables, links, images by
public HTTPS URL) plus inline styles limited to harmless CSS properties. Scripts, `<style>`
elements, event handlers, forms, iframes and `javascript:` URLs are removed. There are no
attachments, so nothing refers to `cid:` parts.
"""

from __future__ import annotations

import re

import nh3
from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig
from lxml import html as lxml_html
from markupsafe import Markup, escape

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col",
        "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5",
        "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
        "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "tt", "u", "ul", "wbr",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"style", "title", "dir", "lang", "align"}),
    "a": frozenset({"href", "target", "name"}),
    "img": frozenset({"src", "alt", "width", "height", "border"}),
    "table": frozenset({"width", "border", "cellpadding", "cellspacing", "bgcolor"}),
    "td": frozenset({"colspan", "rowspan", "width", "height", "valign", "bgcolor"}),
    "th": frozenset({"colspan", "rowspan", "width", "height", "valign", "bgcolor", "scope"}),
    "tr": frozenset({"valign", "bgcolor"}),
    "col": frozenset({"span", "width"}),
    "colgroup": frozenset({"span", "width"}),
    "font": frozenset({"color", "face", "size"}),
    "ol": frozenset({"start", "type"}),
    "ul": frozenset({"type"}),
    "li": frozenset({"value"}),
    "hr": frozenset({"width", "size"}),
}

# No positioning, no `display` (hidden text is a spam signal), no backgrounds (url(...)).
ALLOWED_STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "font-family", "font-size", "font-style", "font-weight",
        "text-align", "text-decoration", "text-transform", "text-indent", "line-height",
        "letter-spacing", "white-space", "vertical-align", "list-style-type",
        "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
        "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
        "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
        "border-style", "border-width", "border-radius", "border-collapse", "border-spacing",
        "width", "min-width", "max-width", "height",
    }
)  # fmt: skip

URL_SCHEMES = frozenset({"http", "https", "mailto"})

# Removed together with their content (the rest of a disallowed element's content is kept).
CLEAN_CONTENT_TAGS = frozenset({"script", "style", "title", "head", "template", "noscript"})

# "www.acme.com" or "acme.com/pricing" typed without a scheme, often from a {{website}} merge tag.
_BARE_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?:[/?#]\S*)?$", re.I)


def _relative_url(url: str) -> str | None:
    """Relative URLs mean nothing in an email: keep bare domains as https, drop the rest."""
    candidate = url.strip()
    if _BARE_DOMAIN.match(candidate):
        return "https://" + candidate
    return None


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("https://"):
        return None  # images by public HTTPS URL only
    return value


_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=CLEAN_CONTENT_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel="noopener noreferrer",
    url_schemes=URL_SCHEMES,
    filter_style_properties=ALLOWED_STYLE_PROPERTIES,
    url_relative=_relative_url,
)


def sanitize_html(html: str) -> str:
    return _CLEANER.clean(html)


def signature_markup(signature: str, *, is_html: bool) -> Markup:
    """The mailbox signature as safe HTML: sanitised if HTML, escaped with line breaks if text."""
    if is_html:
        return Markup(sanitize_html(signature))
    return Markup("<br>\n").join(escape(line) for line in signature.splitlines())


_TEXT_CONFIG = ParserConfig(display_images=True, display_links=False)
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """The plain-text alternative of a sanitised body. Links read "text (url)"."""
    if not html.strip():
        return ""
    tree = lxml_html.document_fromstring(html)
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href:
            continue
        shown = href.removeprefix("mailto:")
        label = anchor.text_content().strip()
        if label not in (href, shown):
            anchor.tail = f" ({shown})" + (anchor.tail or "")
    text = Inscriptis(tree, _TEXT_CONFIG).get_text()
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
