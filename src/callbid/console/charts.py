"""Charts as inline SVG, drawn on the server: no chart library, nothing to load, readable
without JavaScript. Pure functions of the figures."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_BOTTOM, PAD_TOP = 420, 220, 52, 22, 26, 10
COLOURS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563")


def _scale(top: float) -> float:
    """A round axis maximum at or above `top` (1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1) if top >= 1 else 1.0
    for factor in (1, 2, 5, 10):
        if step * factor >= top:
            return float(step * factor)
    return float(step * 10)


def _amount(value: float, unit: str) -> str:
    """`$12.5`, `40%`, `1,200`: the unit where it is written, no trailing zeros."""
    number = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{number}%" if unit == "%" else f"{unit}{number}"


def _frame(title: str, top: float, unit: str) -> list[str]:
    plot_h, right = HEIGHT - PAD_BOTTOM - PAD_TOP, WIDTH - PAD_RIGHT
    parts = [f"<title>{escape(title)}</title>"]
    for i in range(5):
        value = top * i / 4
        y = HEIGHT - PAD_BOTTOM - plot_h * i / 4
        label = _amount(value, unit)
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    return parts


def _short(label: str) -> str:
    """A day as `12-07`, a name cut to ten characters."""
    if len(label) == 10 and label[4] == "-" and label[7] == "-":
        return label[5:]
    return label if len(label) <= 10 else label[:9] + "…"


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    every = max(1, -(-len(labels) // 6))
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(_short(label))}</text>'
        for i, (label, x) in enumerate(zip(labels, xs, strict=True))
        if i % every == 0
    ]


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{COLOURS[i % len(COLOURS)]}"></span>'
        f"{escape(name)}</li>"
        for i, name in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def line_chart(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], *, unit: str = ""
) -> Markup:
    """One line per series over `labels` (e.g. days), with a legend; every series as long as
    `labels`."""
    top = _scale(max((max(v, default=0) for v in series.values()), default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    count = max(len(labels) - 1, 1)
    xs = [PAD_LEFT + plot_w * i / count for i in range(len(labels))]
    parts = _frame(title, top, unit)
    for i, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{x:.1f},{HEIGHT - PAD_BOTTOM - plot_h * v / top:.1f}"
            for x, v in zip(xs, values, strict=True)
        )
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(name)}</title></polyline>"
        )
    parts += _x_labels(labels, xs)
    return _figure(title, parts, list(series))


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = ""
) -> Markup:
    """One bar per label."""
    top = _scale(max(values, default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(labels), 1)
    parts = _frame(title, top, unit)
    xs = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / top
        x = PAD_LEFT + slot * i + slot * 0.15
        xs.append(x + slot * 0.35)
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM - height:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{height:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: '
            f"{_amount(value, unit)}</title></rect>"
        )
    parts += _x_labels(labels, xs)
    return _figure(title, parts, [])


def _figure(title: str, parts: list[str], names: list[str]) -> Markup:
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'class="chart">{"".join(parts)}</svg>'
    )
    legend = _legend(names) if names else ""
    return Markup(f"<figure><figcaption>{escape(title)}</figcaption>{svg}{legend}</figure>")
