"""Participation maps: people per region, district and Mogadishu sub-district (spec analysis.md section 5).

The polygons are the bundled boundary files in ``redss_pipeline/data/geo/somalia/`` (OCHA COD-AB boundaries as
shipped by AfricasVoices/CoreDataModules; see the README there for provenance and credit). GeoJSON polygons are
drawn directly as matplotlib paths; no GIS stack is needed.

What a reader sees: only the level's polygons with thin black outlines, no axes and no title; 0 is white and
the non-zero counts fall into k = min(5, distinct non-zero counts) classes by Fisher-Jenks natural breaks, class
i of k coloured at i/k of a linear RGB ramp from white to AVF red ``#993e46``; a frameless legend titled
``Participants`` (a white ``0``, then ``lo - hi`` per class); regions and Mogadishu sub-districts print every
polygon's count (zeros too) at the polygon's label point, districts print none. In a shareable map the printed
counts are suppressed like the tables (``<5``), and the counts it is coloured by have every small count made
alike (:func:`~redss_pipeline.analysis.suppression.colour_counts`), so no legend class tells a hidden count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath

from redss_pipeline.analysis.charts import AVF_RED, figure_png, figure_svg

__all__ = [
    "MAP_LEVEL_FILES",
    "Boundaries",
    "DrawnMap",
    "MapLevel",
    "class_colour",
    "draw_map",
    "jenks_classes",
    "legend_labels",
    "load_boundaries",
]


@dataclass(frozen=True)
class MapLevel:
    """A level with a boundary file: the file, the property holding the scheme's StringValue, the label point
    properties (None for no labels) and whether counts are printed."""

    file: str
    id_property: str
    label_x: str | None
    label_y: str | None
    print_counts: bool


MAP_LEVEL_FILES: Mapping[str, MapLevel] = {
    "region": MapLevel("regions.geojson", "ADM1_AVF", "ADM1_LX", "ADM1_LY", True),
    "district": MapLevel("districts.geojson", "ADM2_AVF", None, None, False),
    "mogadishu_sub_district": MapLevel("mogadishu_sub_districts.geojson", "ADM3_AVF", "ADM3_LX", "ADM3_LY", True),
}


@dataclass(frozen=True)
class Boundaries:
    """The polygons of one level: per location id, one compound path and the label point (or None)."""

    level: str
    paths: tuple[tuple[str, MplPath, tuple[float, float] | None], ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(location for location, _, _ in self.paths)

    @property
    def extent(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The lower-left and upper-right corners of all polygons, with a small margin."""
        points = [path.get_extents() for _, path, _ in self.paths]
        x0, y0 = min(p.x0 for p in points), min(p.y0 for p in points)
        x1, y1 = max(p.x1 for p in points), max(p.y1 for p in points)
        pad = 0.01 * max(x1 - x0, y1 - y0)
        return (x0 - pad, y0 - pad), (x1 + pad, y1 + pad)


@cache
def load_boundaries(level: str) -> Boundaries:
    """Reads the bundled GeoJSON of a level (once per process: the files are package data, never changed)."""
    spec = MAP_LEVEL_FILES[level]
    text = resources.files("redss_pipeline").joinpath("data", "geo", "somalia", spec.file).read_text("utf-8")
    collection = json.loads(text)
    paths = []
    for feature in collection["features"]:
        properties = feature["properties"]
        vertices: list[Sequence[float]] = []
        codes: list[int] = []
        geometry = feature["geometry"]
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        for polygon in polygons:
            for ring in polygon:
                vertices.extend(ring)
                codes.extend([int(MplPath.MOVETO)] + [int(MplPath.LINETO)] * (len(ring) - 2)
                             + [int(MplPath.CLOSEPOLY)])
        label = None
        if spec.label_x and properties.get(spec.label_x) is not None:
            label = (float(properties[spec.label_x]), float(properties[spec.label_y]))
        paths.append((properties[spec.id_property], MplPath([(v[0], v[1]) for v in vertices], codes), label))
    return Boundaries(level, tuple(paths))


def jenks_classes(values: Sequence[int], k: int) -> list[int]:
    """Fisher-Jenks natural breaks: the upper bound of each of ``k`` classes of ``values`` (sorted, ascending)
    that minimise the within-class sum of squared deviations. Equal values always share a class."""
    distinct = sorted(set(values))
    if not distinct:
        return []
    k = max(1, min(k, len(distinct)))
    weight = [values.count(v) for v in distinct]
    n = len(distinct)
    # Prefix sums of weights, weighted values and weighted squares, for the cost of a run distinct[i..j].
    w = [0.0] * (n + 1)
    s = [0.0] * (n + 1)
    q = [0.0] * (n + 1)
    for i, (v, c) in enumerate(zip(distinct, weight)):
        w[i + 1] = w[i] + c
        s[i + 1] = s[i] + c * v
        q[i + 1] = q[i] + c * v * v

    def cost(i: int, j: int) -> float:  # values i..j-1
        total = w[j] - w[i]
        mean_sum = s[j] - s[i]
        return (q[j] - q[i]) - mean_sum * mean_sum / total

    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for classes in range(1, k + 1):
        for j in range(classes, n + 1):
            for i in range(classes - 1, j):
                candidate = best[classes - 1][i] + cost(i, j)
                if candidate < best[classes][j] - 1e-9:
                    best[classes][j] = candidate
                    cut[classes][j] = i
    bounds = []
    j = n
    for classes in range(k, 0, -1):
        bounds.append(distinct[j - 1])
        j = cut[classes][j]
    return sorted(bounds)


def class_colour(i: int, k: int) -> str:
    """Class i of k (1-based) on the linear RGB ramp from white to AVF red; class 0 is white."""
    red = [int(AVF_RED[p:p + 2], 16) for p in (1, 3, 5)]
    t = i / k if k else 0
    channels = [round(255 + (c - 255) * t) for c in red]
    return "#" + "".join(f"{c:02x}" for c in channels)


def legend_labels(bounds: Sequence[int]) -> list[str]:
    """``lo - hi`` per class (lo = previous upper bound + 1, the first 1; just ``lo`` when lo = hi)."""
    labels = []
    low = 1
    for high in bounds:
        labels.append(str(low) if low == high else f"{low} - {high}")
        low = high + 1
    return labels


@dataclass(frozen=True)
class DrawnMap:
    """A drawn map as PNG bytes and SVG text."""

    png: bytes
    svg: str


def draw_map(level: str, counts: Mapping[str, int], *, labels: Mapping[str, str] | None = None,
             legend_position: str = "lower right", dpi: int = 1200) -> DrawnMap:
    """Draws one map of ``level``; ``counts`` per location id colour it, ``labels`` (the counts as the reader
    may see them) are printed where the level prints counts."""
    spec = MAP_LEVEL_FILES[level]
    boundaries = load_boundaries(level)
    values = [counts.get(location, 0) for location in boundaries.ids]
    non_zero = [v for v in values if v > 0]
    bounds = jenks_classes(non_zero, 5)
    k = len(bounds)

    def colour_of(value: int) -> str:
        if value <= 0:
            return "#ffffff"
        for i, bound in enumerate(bounds, start=1):
            if value <= bound:
                return class_colour(i, k)
        return class_colour(k, k)

    with matplotlib.rc_context({"svg.hashsalt": "redss-pipeline", "svg.fonttype": "none", "path.simplify": True}):
        # The figure has the drawing's aspect ratio, so the image is cropped to the drawing.
        (x0, y0), (x1, y1) = boundaries.extent
        figure = Figure(figsize=(3.0, 3.0 * (y1 - y0) / (x1 - x0)))
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0, 0, 1, 1))
        # One collection of all polygons: drawn in one call, and the axes limits are set below, not grown
        # polygon by polygon.
        axes.add_collection(PathCollection([path for _, path, _ in boundaries.paths],
                                           facecolors=[colour_of(value) for value in values],
                                           edgecolors="black", linewidths=0.15), autolim=False)
        for (location, _, label_point), value in zip(boundaries.paths, values):
            if spec.print_counts and label_point is not None:
                text = (labels or {}).get(location, str(value))
                axes.text(label_point[0], label_point[1], text, ha="center", va="center", fontsize=4)
        axes.set_xlim(x0, x1)
        axes.set_ylim(y0, y1)
        axes.set_aspect("equal")
        axes.set_axis_off()
        handles = [Patch(facecolor="#ffffff", edgecolor="black", linewidth=0.15, label="0")]
        handles += [Patch(facecolor=class_colour(i, k), edgecolor="black", linewidth=0.15, label=text)
                    for i, text in enumerate(legend_labels(bounds), start=1)]
        legend_at: Any = legend_position  # validated by the configuration against matplotlib's names
        axes.legend(handles=handles, title="Participants", loc=legend_at, frameon=False, fontsize=4.5,
                    title_fontsize=5, handlelength=1.2, handleheight=0.8)
        return DrawnMap(png=figure_png(figure, dpi=dpi), svg=figure_svg(figure))
