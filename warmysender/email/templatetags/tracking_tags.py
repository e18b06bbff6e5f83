from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(fraction: float) -> str:
    """0.95 → "95", 0.995 → "99.5": a fraction as a percentage without trailing zeros."""
    return f"{100 * float(fraction):.4g}"
