"""The canvas as a user sees it: pixels of the grabbed widget, clicks, wheel, labels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.render import text_color
from maskdesk.ui.canvas import Canvas

GREY = 128
W, H = 200, 150
RED, BLUE, GREEN, YELLOW = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)


def rect_mask(x: int, y: int, w: int, h: int) -> CropMask:
    return CropMask(x, y, np.ones((h, w), dtype=bool))


def disc_mask(cx: int, cy: int, r: int) -> CropMask:
    yy, xx = np.mgrid[0 : 2 * r + 1, 0 : 2 * r + 1]
    return CropMask(cx - r, cy - r, (xx - r) ** 2 + (yy - r) ** 2 <= r * r)


def scene() -> tuple[list[Instance], dict[int, tuple[int, int, int]]]:
    instances = [
        Instance(1, rect_mask(20, 20, 100, 80), score=0.9, id=1),  # big, x 20..119, y 20..99
        Instance(2, disc_mask(70, 60, 15), score=0.8, id=2),  # inside the big one
        Instance(1, rect_mask(150, 110, 30, 30), score=0.3, id=3),  # low score
        Instance(2, rect_mask(150, 10, 40, 30), score=0.2, review=Review.ACCEPTED, id=4),
    ]
    return instances, {1: RED, 2: BLUE, 3: GREEN, 4: YELLOW}


NAMES = {1: "rectangle", 2: "disc"}


def pixels(canvas: Canvas) -> np.ndarray:
    image = canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.bytesPerLine() * h)
    return raw.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def blend(
    under: np.ndarray | tuple[float, ...], color: tuple[int, int, int], a: float
) -> np.ndarray:
    return np.asarray(under, dtype=float) * (1 - a) + np.asarray(color, dtype=float) * a


def close(actual: np.ndarray, expected: np.ndarray, tol: float = 2.0) -> bool:
    return bool(np.all(np.abs(actual.astype(float) - expected) <= tol))


@pytest.fixture
def canvas(qtbot: QtBot) -> Canvas:
    widget = Canvas()
    qtbot.addWidget(widget)
    widget.resize(W, H)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_image(np.full((H, W, 3), GREY, dtype=np.uint8))
    instances, colors = scene()
    widget.set_instances(instances, NAMES, colors)
    return widget


def fills_only(canvas: Canvas) -> None:
    canvas.set_show_outlines(False)
    canvas.set_show_boxes(False)
    canvas.set_show_labels(False)


def test_fitted_at_one_to_one_when_the_widget_matches(canvas: Canvas) -> None:
    assert canvas.scale() == pytest.approx(1.0)
    assert canvas.image_to_widget(QPointF(10, 20)) == QPointF(10, 20)
    assert canvas.objectName() == "canvas"


def test_masks_blend_at_the_opacity_and_background_keeps_the_image(canvas: Canvas) -> None:
    fills_only(canvas)
    px = pixels(canvas)
    assert tuple(px[5, 5]) == (GREY, GREY, GREY)
    assert close(px[90, 30], blend((GREY,) * 3, RED, 0.5))
    # The disc lies on the rectangle: the later instance's colour alone, blended once.
    assert close(px[60, 70], blend((GREY,) * 3, BLUE, 0.5))
    # An accepted instance shows whatever its score.
    assert close(px[25, 170], blend((GREY,) * 3, YELLOW, 0.5))


def test_opacity_changes_pixels_without_rebuilding(canvas: Canvas) -> None:
    fills_only(canvas)
    pixels(canvas)
    builds = canvas.cache_builds
    assert builds == 4
    canvas.set_opacity(0.8)
    px = pixels(canvas)
    assert close(px[90, 30], blend((GREY,) * 3, RED, 0.8))
    layers = canvas.layer_builds
    canvas.set_opacity(0.0)
    assert tuple(pixels(canvas)[90, 30]) == (GREY, GREY, GREY)
    canvas.set_selection([1])
    pixels(canvas)
    assert canvas.cache_builds == builds
    assert canvas.layer_builds == layers  # opacity and selection reuse the composed masks


def test_changed_instance_rebuilds_only_itself(canvas: Canvas) -> None:
    fills_only(canvas)
    pixels(canvas)
    instances, colors = scene()  # new Instance objects, but masks are new objects too
    canvas.set_instances(instances, NAMES, colors)
    pixels(canvas)
    assert canvas.cache_builds == 8
    same = [instances[0], instances[1].with_changes(score=0.5), *instances[2:]]
    canvas.set_instances(same, NAMES, colors)
    pixels(canvas)
    assert canvas.cache_builds == 8  # a score edit keeps the mask object
    moved = [instances[0].with_changes(mask=rect_mask(10, 10, 20, 20)), *instances[1:]]
    canvas.set_instances(moved, NAMES, colors)
    px = pixels(canvas)
    assert canvas.cache_builds == 9
    assert tuple(px[90, 30]) == (GREY, GREY, GREY)
    assert close(px[15, 15], blend((GREY,) * 3, RED, 0.5))


def test_score_threshold_hides_low_predictions_but_not_accepted_ones(canvas: Canvas) -> None:
    fills_only(canvas)
    assert close(pixels(canvas)[125, 165], blend((GREY,) * 3, GREEN, 0.5))
    builds = canvas.cache_builds
    canvas.set_min_score(0.5)
    px = pixels(canvas)
    assert tuple(px[125, 165]) == (GREY, GREY, GREY)
    assert close(px[25, 170], blend((GREY,) * 3, YELLOW, 0.5))
    assert canvas.cache_builds == builds
    canvas.set_hidden_ids({1})
    assert tuple(pixels(canvas)[90, 30]) == (GREY, GREY, GREY)


def test_human_instance_has_no_score_and_always_shows(canvas: Canvas) -> None:
    human = Instance(1, rect_mask(0, 0, 10, 10), origin=Origin.HUMAN, id=9)
    canvas.set_instances([human], NAMES, {9: RED})
    canvas.set_min_score(0.99)
    assert close(pixels(canvas)[5, 5], blend((GREY,) * 3, RED, 0.5))


def test_hide_all_shows_the_bare_image(canvas: Canvas) -> None:
    canvas.set_selection([1])
    canvas.set_masks_hidden(True)
    assert (pixels(canvas) == GREY).all()
    canvas.set_masks_hidden(False)
    assert not (pixels(canvas) == GREY).all()


def test_outline_and_box_are_drawn_in_the_instance_colour(canvas: Canvas) -> None:
    canvas.set_show_masks(False)
    canvas.set_show_labels(False)
    canvas.set_show_boxes(False)
    instances, colors = scene()
    instances[1] = instances[1].with_changes(review=Review.ACCEPTED)  # solid, not dashed
    canvas.set_instances(instances, NAMES, colors)
    px = pixels(canvas)
    # The disc's outline crosses its leftmost column, in blue; inside stays grey.
    assert px[60, 54:58, 2].max() > 200
    assert tuple(px[60, 70]) == (GREY, GREY, GREY)


def _edge_runs(px: np.ndarray, y: int, x0: int, x1: int) -> list[bool]:
    """Per column of a horizontal box edge at row `y`: is a line painted there?"""
    band = np.abs(px[y - 2 : y + 3, x0:x1].astype(int) - GREY).max(axis=(0, 2))
    return [bool(d > 40) for d in band]


def test_pending_instances_are_dashed_and_decided_ones_solid(canvas: Canvas) -> None:
    canvas.set_show_masks(False)
    canvas.set_show_labels(False)
    canvas.set_show_outlines(False)
    canvas.set_min_score(0.0)
    px = pixels(canvas)
    # Instance 1 (red, box 20..120 x 20..100) is a prediction nobody reviewed: its top edge
    # has gaps, repeatedly. Instance 4 (yellow, box 150..190 x 10..40) is accepted: solid.
    pending = _edge_runs(px, 20, 26, 114)
    assert any(pending) and pending.count(False) >= 10
    gaps = sum(1 for a, b in zip(pending, pending[1:], strict=False) if a and not b)
    assert gaps >= 5
    assert all(_edge_runs(px, 10, 154, 186))
    # Accepting it makes it solid; a person's drawing is solid too.
    instances, colors = scene()
    instances[0] = instances[0].with_changes(review=Review.ACCEPTED)
    instances[2] = instances[2].with_changes(origin=Origin.HUMAN, score=None)
    canvas.set_instances(instances, NAMES, colors)
    px = pixels(canvas)
    assert all(_edge_runs(px, 20, 26, 114))
    assert all(_edge_runs(px, 110, 154, 176))


def test_click_selects_the_smallest_and_modifiers_extend(qtbot: QtBot, canvas: Canvas) -> None:
    with qtbot.waitSignal(canvas.selectionChanged) as blocker:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(70, 60))
    assert blocker.args == [[2]]
    with qtbot.waitSignal(canvas.selectionChanged) as blocker:
        qtbot.mouseClick(
            canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, QPoint(30, 90)
        )
    assert blocker.args == [[2, 1]]
    with qtbot.waitSignal(canvas.selectionChanged) as blocker:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert blocker.args == [[]]
    # A hidden instance cannot be clicked: the click goes to the one below.
    canvas.set_hidden_ids({2})
    with qtbot.waitSignal(canvas.selectionChanged) as blocker:
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(70, 60))
    assert blocker.args == [[1]]


def test_set_selection_does_not_emit_and_selection_stands_out(qtbot: QtBot, canvas: Canvas) -> None:
    fills_only(canvas)
    before = pixels(canvas)
    with qtbot.assertNotEmitted(canvas.selectionChanged):
        canvas.set_selection([3, 77])
    assert canvas.selection() == [3]
    after = pixels(canvas)
    # The selected square (150..179, 110..139) gets a bright outline at its edge.
    assert (after[110:140, 150] != before[110:140, 150]).any()
    assert (after[5, 5] == before[5, 5]).all()


def test_hover_reports_the_instance_under_the_cursor(qtbot: QtBot, canvas: Canvas) -> None:
    with qtbot.waitSignal(canvas.hovered) as blocker:
        qtbot.mouseMove(canvas, QPoint(30, 90))
    assert blocker.args == [1]
    with qtbot.waitSignal(canvas.hovered) as blocker:
        qtbot.mouseMove(canvas, QPoint(5, 5))
    assert blocker.args == [-1]


def gradient() -> np.ndarray:
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = np.arange(W)[None, :]
    rgb[..., 1] = np.arange(H)[:, None]
    return rgb


def wheel(canvas: Canvas, pos: QPointF, notches: int) -> None:
    event = QWheelEvent(
        pos,
        canvas.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, event)


def test_wheel_zoom_keeps_the_point_under_the_cursor(canvas: Canvas) -> None:
    canvas.set_image(gradient())
    canvas.set_masks_hidden(True)
    cursor = QPointF(60.5, 40.5)
    wheel(canvas, cursor, 2)
    assert canvas.scale() == pytest.approx(1.25**2)
    under = canvas.widget_to_image(cursor)
    assert abs(under.x() - 60.5) < 1e-6 and abs(under.y() - 40.5) < 1e-6
    r, g, _b = pixels(canvas)[40, 60]
    assert abs(int(r) - 60) <= 1 and abs(int(g) - 40) <= 1
    wheel(canvas, QPointF(150.5, 100.5), -3)
    assert canvas.scale() == pytest.approx(1.25**-1)
    r, g, _b = pixels(canvas)[100, 150]
    expected = canvas.widget_to_image(QPointF(150.5, 100.5))
    assert abs(r - expected.x()) <= 1.5 and abs(g - expected.y()) <= 1.5


def test_fit_and_actual_size(canvas: Canvas) -> None:
    canvas.set_image(gradient())
    canvas.set_masks_hidden(True)
    canvas.resize(300, 300)
    canvas.zoom_at(3.0, QPointF(10, 10))
    canvas.fit()
    assert canvas.scale() == pytest.approx(1.5)
    px = pixels(canvas)
    top_left = canvas.image_to_widget(QPointF(0, 0))
    bottom_right = canvas.image_to_widget(QPointF(W, H))
    assert (top_left.x(), top_left.y()) == (0, pytest.approx(37.5))
    assert (bottom_right.x(), bottom_right.y()) == (300, pytest.approx(262.5))
    # The image's corners are on screen, the bands above and below are background.
    assert tuple(px[39, 0, :2]) == (0, 0)
    r, g = px[261, 299, :2].astype(int)
    assert abs(r - (W - 1)) <= 1 and abs(g - (H - 1)) <= 1
    assert tuple(px[10, 150]) == (48, 48, 48)
    canvas.actual_size()
    assert canvas.scale() == 1.0
    centre = canvas.widget_to_image(QPointF(150, 150))
    assert (centre.x(), centre.y()) == (pytest.approx(100), pytest.approx(75))


def test_middle_drag_pans(qtbot: QtBot, canvas: Canvas) -> None:
    before = canvas.image_to_widget(QPointF(0, 0))
    qtbot.mousePress(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(100, 75))
    qtbot.mouseMove(canvas, QPoint(120, 85))
    qtbot.mouseRelease(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(120, 85))
    after = canvas.image_to_widget(QPointF(0, 0))
    assert (after.x() - before.x(), after.y() - before.y()) == (20, 10)
    assert canvas.selection() == []


def test_labels_with_the_same_box_do_not_overlap(canvas: Canvas) -> None:
    canvas.resize(400, 300)
    canvas.fit()
    same = [Instance(1, rect_mask(60, 60, 80, 60), score=0.5 + i / 10, id=10 + i) for i in range(4)]
    names = {1: "猫 кошка"}
    colors = {10: RED, 11: BLUE, 12: GREEN, 13: YELLOW}
    canvas.set_instances(same, names, colors)
    rects = canvas.label_rects()
    assert sorted(rects) == [10, 11, 12, 13]
    for a in rects:
        for b in rects:
            if a < b:
                assert not rects[a].intersects(rects[b]), (rects[a], rects[b])
    # The best score gets the spot right above the box; each label is painted in its colour.
    box_top = canvas.image_to_widget(QPointF(60, 60)).y()
    assert rects[13].bottom() == pytest.approx(box_top)
    px = pixels(canvas)
    for key, color in colors.items():
        corner = rects[key].topLeft()
        assert tuple(px[int(corner.y()) + 1, int(corner.x()) + 1]) == color


def test_labels_stay_on_screen_at_the_top_border(canvas: Canvas) -> None:
    top = [Instance(1, rect_mask(0, 0, 100, 60), score=0.9, id=1)]
    canvas.set_instances(top, NAMES, {1: RED})
    rect = canvas.label_rects()[1]
    assert rect.top() >= 0 and rect.left() >= 0
    assert rect.bottom() <= canvas.image_to_widget(QPointF(0, 60)).y()


def test_instances_at_and_beyond_the_border_paint(canvas: Canvas) -> None:
    edge = [
        Instance(1, rect_mask(0, 0, 10, 10), score=0.9, id=1),
        Instance(2, rect_mask(190, 140, 10, 10), score=0.9, id=2),
        Instance(1, rect_mask(195, 100, 30, 30), score=0.9, id=3),  # past the right edge
    ]
    canvas.set_instances(edge, NAMES, {1: RED, 2: BLUE, 3: GREEN})
    px = pixels(canvas)
    assert close(px[149, 199], blend((GREY,) * 3, BLUE, 0.5), tol=60)
    assert px[149, 199, 2] > px[149, 199, 0]
    for notches in (3, -6):
        wheel(canvas, QPointF(199, 149), notches)
        pixels(canvas)
    assert canvas.instance_at(QPointF(199.5, 110.5)) == 3


def test_text_colour_contrasts() -> None:
    assert text_color(YELLOW) == (0, 0, 0)
    assert text_color(BLUE) == (255, 255, 255)
    assert text_color((0, 0, 0)) == (255, 255, 255)


def test_outline_rings_run_through_the_border_pixel_centres() -> None:
    # The rings are written straight into QPolygonF storage; checked against the corners by
    # hand and against one QPointF per OpenCV contour vertex, made the plain way.
    import cv2

    from maskdesk.ui.overlay_cache import outline_path

    bits = np.zeros((6, 9), dtype=bool)
    bits[1:5, 2:8] = True
    bits[2:4, 4:6] = False  # a hole
    path = outline_path(CropMask(10, 20, bits))
    rings = [[(p.x(), p.y()) for p in ring] for ring in path.toSubpathPolygons()]
    contours, _ = cv2.findContours(bits.view(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    plain = [[(x + 10.5, y + 20.5) for x, y in c.reshape(-1, 2).tolist()] for c in contours]
    assert rings == [ring + ring[:1] for ring in plain]
    outer = [(12.5, 21.5), (12.5, 24.5), (17.5, 24.5), (17.5, 21.5)]
    assert any(sorted(set(ring)) == sorted(outer) for ring in rings)
    assert len(rings) == 2


def test_a_long_error_message_wraps_within_the_canvas(qtbot: QtBot):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(320, 240)
    canvas.show()
    text = (
        "Could not read broken.jpg: image file is truncated (43 bytes not processed); "
        "the picture is skipped and kept as failed in the folder."
    )
    qtbot.waitExposed(canvas)
    canvas.set_message(text)
    qtbot.waitUntil(lambda: not canvas.message_rect.isEmpty())
    drawn = canvas.message_rect
    assert drawn.left() >= 0 and drawn.right() <= canvas.width()
    assert drawn.height() > canvas.fontMetrics().height() * 1.5  # more than one line
