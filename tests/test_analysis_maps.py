"""What a reader of a participation map sees (spec analysis.md section 5): each polygon filled with the colour
of its count's class, read back from the PNG's pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from redss_pipeline.analysis.maps import draw_map, load_boundaries

DPI = 100


def _inside_pixel(path, extent, size, away_from) -> tuple[int, int] | None:
    """A pixel well inside ``path`` (its 7 x 7 neighbourhood too) and at least 30 pixels from the point
    ``away_from`` (where the count is printed), or None for a polygon too small to have one."""
    (x0, y0), (x1, y1) = extent
    width, height = size

    def pixel_of(x: float, y: float) -> tuple[float, float]:
        return (x - x0) / (x1 - x0) * width, (y1 - y) / (y1 - y0) * height

    box = path.get_extents()
    xs = np.linspace(box.x0, box.x1, 25)[1:-1]
    ys = np.linspace(box.y0, box.y1, 25)[1:-1]
    label = None if away_from is None else pixel_of(*away_from)
    for y in ys:
        for x in xs:
            px, py = map(round, pixel_of(x, y))
            if label is not None and (px - label[0]) ** 2 + (py - label[1]) ** 2 < 30 ** 2:
                continue
            around = [((px + dx) / width * (x1 - x0) + x0, y1 - (py + dy) / height * (y1 - y0))
                      for dx in range(-3, 4) for dy in range(-3, 4)]
            if path.contains_points(around).all():
                return px, py
    return None


@pytest.mark.parametrize("level", ["district", "region"])
def test_each_polygon_is_filled_with_the_colour_of_its_class(level):
    """Five polygons with counts 1, 2, 3, 4 and 50 make five classes (k = 5, one count each), so class i is
    i/5 of the way from white to #993e46 = (153, 62, 70): class 1 (235, 216, 218), class 2 (214, 178, 181),
    class 3 (194, 139, 143), class 4 (173, 101, 107), class 5 (153, 62, 70); every other polygon is 0, white."""
    boundaries = load_boundaries(level)
    ids = boundaries.ids
    coloured = {ids[3]: 1, ids[6]: 2, ids[9]: 3, ids[12]: 4, ids[15]: 50}
    expected_by_count = {0: (255, 255, 255), 1: (235, 216, 218), 2: (214, 178, 181), 3: (194, 139, 143),
                         4: (173, 101, 107), 50: (153, 62, 70)}

    drawn = draw_map(level, coloured, dpi=DPI)

    image = Image.open(io.BytesIO(drawn.png)).convert("RGB")
    checked = set()
    for location, path, label_point in boundaries.paths:
        pixel = _inside_pixel(path, boundaries.extent, image.size, label_point)
        if pixel is None:
            continue
        colour = image.getpixel(pixel)
        expected = expected_by_count[coloured.get(location, 0)]
        assert max(abs(a - b) for a, b in zip(colour, expected)) <= 2, (location, colour, expected)
        checked.add(location)
    assert set(coloured) <= checked
