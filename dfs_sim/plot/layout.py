"""Where text goes: point labels placed so they overlap nothing, and the checks that prove it.

Labels are placed after the figure's layout is fixed, in display space: each label tries a ring of
positions around its point, nearest first, and takes the first that stays inside the axes and hits
no other label, no marker and no line. The checks (`overlapping_texts`, `legend_covers_data`) are
what the tests run on every figure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Offsets (points) from the anchor tried for a label, nearest first; (ha, va) keep the text on the
# far side of the offset so it never sits on its own point.
_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
_RADII = (6, 12, 20, 30, 44, 60, 80, 100, 130, 170)
_MARKER_HALF_PX = 6.0  # half the side of the square a marker is taken to cover


@dataclass
class PointLabel:
    x: float  # data coordinates of the point it names
    y: float
    text: str
    color: str = "black"


def finish_layout(fig) -> None:
    """Fix the axes' positions: placement works in display space, so nothing may move afterwards."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def _drawn(fig):
    """The figure's renderer after a draw; draws only when something changed since the last one."""
    if fig.stale:
        fig.canvas.draw()
    return fig.canvas.get_renderer()


def _boxes_hit(a, b, pad: float = 0.0) -> bool:
    return a.x0 < b.x1 + pad and b.x0 < a.x1 + pad and a.y0 < b.y1 + pad and b.y0 < a.y1 + pad


def _data_obstacles(ax, skip_vertical_at: float | None = None) -> list:
    """Display-space boxes around every marker and along every line of an axes (but the vertical
    line at `skip_vertical_at`, which a label along it may touch)."""
    from matplotlib.transforms import Bbox

    boxes = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xdata = np.asarray(line.get_xdata(), dtype=float)
        if skip_vertical_at is not None and len(xdata) == 2 and np.allclose(xdata, skip_vertical_at):
            continue
        xy = line.get_transform().transform(np.column_stack(line.get_data()).astype(float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        marker = line.get_marker()
        if marker not in (None, "None", "", " ") and len(xy):
            px = ax.figure.dpi / 72
            half = max(_MARKER_HALF_PX, line.get_markersize() * px / 2 + 1)
            thin = line.get_markeredgewidth() * px / 2 + 1
            # A horizontal or vertical bar marker covers a thin strip, not a square.
            half_x, half_y = (half, thin) if marker == "_" else (thin, half) if marker == "|" else (half, half)
            boxes += [Bbox.from_extents(x - half_x, y - half_y, x + half_x, y + half_y) for x, y in xy]
        if line.get_linestyle() not in ("None", "", " ") and len(xy) > 1:
            for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:]):
                steps = max(1, int(np.hypot(x1 - x0, y1 - y0) // 4))
                for t in np.linspace(0, 1, steps + 1):
                    x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                    boxes.append(Bbox.from_extents(x - 1.5, y - 1.5, x + 1.5, y + 1.5))
    for collection in ax.collections:
        offsets = collection.get_offsets()
        if len(offsets):
            xy = collection.get_offset_transform().transform(np.asarray(offsets, dtype=float))
            half = _MARKER_HALF_PX + 2
            boxes += [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in xy if np.isfinite([x, y]).all()]
    return boxes


def place_labels(ax, labels: list[PointLabel], fontsize: float = 8, extra_obstacles=()) -> list:
    """Annotate each point with its label where it overlaps nothing; returns the annotations.

    Call after `finish_layout`. A label that finds no free spot within 170 points takes the spot
    that overlaps least, joined to its point by a thin leader line.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    area = ax.get_window_extent(renderer)
    obstacles = _data_obstacles(ax) + list(extra_obstacles)
    obstacles += [text_box(t, renderer) for t in ax.texts if t.get_visible() and t.get_text()]
    placed = []
    for label in labels:
        best, best_cost = None, None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                norm = np.hypot(dx, dy)
                offset = (radius * dx / norm, radius * dy / norm)
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                text = ax.annotate(label.text, (label.x, label.y), xytext=offset, textcoords="offset points",
                                   ha=ha, va=va, fontsize=fontsize, color=label.color)
                box = text_box(text, renderer)
                outside = max(0.0, area.x0 - box.x0) + max(0.0, box.x1 - area.x1) + \
                    max(0.0, area.y0 - box.y0) + max(0.0, box.y1 - area.y1)
                hits = sum(_overlap_area(box, other) for other in obstacles)
                # Outside the axes only when every spot inside is taken.
                cost = hits + (1e7 + 1e3 * outside if outside else 0.0) + radius * 0.01
                if best_cost is None or cost < best_cost:
                    if best is not None:
                        best.remove()
                    best, best_cost = text, cost
                else:
                    text.remove()
                if hits == 0 and outside == 0:
                    break
            if best_cost is not None and best_cost < 1:
                break
        if np.hypot(*best.xyann) > 14:  # far from its point: a leader line says which point it names
            best.remove()
            best = ax.annotate(label.text, (label.x, label.y), xytext=best.xyann, textcoords="offset points",
                               ha=best.get_ha(), va=best.get_va(), fontsize=fontsize, color=label.color,
                               arrowprops={"arrowstyle": "-", "color": label.color, "lw": 0.6, "alpha": 0.7,
                                           "shrinkA": 0, "shrinkB": 3})
        obstacles.append(text_box(best, renderer))
        placed.append(best)
    return placed


def text_box(text, renderer):
    """The box of the text itself (an annotation's own extent includes its leader line)."""
    from matplotlib.text import Annotation, Text

    if isinstance(text, Annotation):
        text.update_positions(renderer)  # an annotation finds where its text goes only when drawn
    return Text.get_window_extent(text, renderer)


def label_vertical_line(ax, x: float, text: str, color: str = "dimgray", fontsize: float = 8):
    """Write `text` up along the vertical line at `x`, on the side and at the height where it hits
    the least data. Call after `finish_layout`."""
    renderer = ax.figure.canvas.get_renderer()
    obstacles = _data_obstacles(ax, skip_vertical_at=x)
    obstacles += [text_box(t, renderer) for t in ax.texts if t.get_visible() and t.get_text()]
    area = ax.get_window_extent(renderer)
    low, high = ax.get_xlim()
    inside = low <= x <= high
    best, best_cost = None, None
    for y in (0.03, 0.35, 0.6):
        for side in ((-1, 1) if inside else (1,)):
            note = ax.annotate(text, (min(max(x, low), high), y), xycoords=("data", "axes fraction"),
                               xytext=(3 * side, 0), textcoords="offset points", rotation=90,
                               ha="left" if side > 0 else "right", va="bottom", fontsize=fontsize, color=color)
            box = text_box(note, renderer)
            outside = box.x0 < area.x0 or box.x1 > area.x1 or box.y1 > area.y1
            cost = sum(_overlap_area(box, other) for other in obstacles) + (1e7 if outside else 0.0)
            if best_cost is None or cost < best_cost:
                if best is not None:
                    best.remove()
                best, best_cost = note, cost
            else:
                note.remove()
    return best


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


# ---- checks ------------------------------------------------------------------------------------

def visible_texts(fig) -> list:
    """Every text artist the figure draws: titles, labels, annotations, legend entries and the tick
    labels of ticks inside the view (matplotlib keeps label objects for ticks it does not draw)."""
    from matplotlib.text import Text

    _drawn(fig)
    tick_texts, drawn_ticks = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) or 1.0
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                labels = (tick.label1, tick.label2)
                tick_texts.update(id(t) for t in labels)
                loc = tick.get_loc()
                if loc is not None and low - 1e-9 * span <= loc <= high + 1e-9 * span:
                    drawn_ticks += [t for t in labels if t.get_visible() and t.get_text()]
    others = [t for t in fig.findobj(Text) if id(t) not in tick_texts and t.get_visible() and t.get_text().strip()]
    return others + drawn_ticks


def overlapping_texts(fig, pad: float = -0.5) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes intersect (a negative pad forgives touching edges)."""
    texts = visible_texts(fig)
    renderer = _drawn(fig)
    boxes = [text_box(t, renderer) for t in texts]
    pairs = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if _boxes_hit(boxes[i], boxes[j], pad):
                pairs.append((texts[i].get_text(), texts[j].get_text()))
    return pairs


def texts_on_markers(fig) -> list[str]:
    """Annotations (not titles or ticks) that sit on a marker or line of their axes."""
    renderer = _drawn(fig)
    hits = []
    for ax in fig.axes:
        obstacles = _data_obstacles(ax)
        for text in ax.texts:
            if not (text.get_visible() and text.get_text()):
                continue
            box = text_box(text, renderer)
            if any(_overlap_area(box, other) > 1.0 for other in obstacles):
                hits.append(text.get_text())
    return hits


def legend_covers_data(fig) -> list[str]:
    """Legends whose box covers a marker, a line or a bar of any axes."""
    from matplotlib.patches import Rectangle

    renderer = _drawn(fig)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    covered = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if not _boxes_hit(box, ax.get_window_extent(renderer)):
                continue
            bars = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, Rectangle) and p.get_visible()
                    and p.get_height() != 0 and p.get_width() != 0]
            if any(_overlap_area(box, other) > 1.0 for other in _data_obstacles(ax) + bars):
                covered.append(ax.get_title() or "an axes")
    return covered
