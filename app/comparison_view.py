"""The comparison view: original and deblurred frames side by side, split, toggled or as a heat map.

One widget paints every mode, with one view transform (zoom and centre, in image pixels)
shared by every pane, so both images always show the same region: wheel zoom about the
cursor, drag to pan, fit and 1:1 act on both at once in every mode.

Modes:

* **side by side**: the original on the left, the result on the right, each in its own pane;
* **split** (wipe): one pane, the original left of a draggable divider and the result right
  of it; the divider stays where it is put on screen while the image is zoomed or panned
  under it;
* **toggle**: the result; hold Space (or the right mouse button) to see the original;
* **heat map**: where and how much the model changed the frame, with a colour bar.

Holding Space shows the original in place of the result in every mode.

The view paints QImages it is given (wrapping engine frames, see :mod:`app.images`); it does
no pixel work itself. It reports how long each new frame took to paint (``frame_painted``),
which is part of the display-path time in the app's statistics.
"""

from __future__ import annotations

import enum
import time

from PySide6.QtCore import QPointF, QRect, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPolygonF,
    QRegion,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.images import rgb_qimage
from engine.pipeline.compose import heatmap_legend


class ViewMode(enum.Enum):
    """How the two frames are compared."""

    SIDE_BY_SIDE = "side_by_side"
    SPLIT = "split"
    TOGGLE = "toggle"
    HEATMAP = "heatmap"

    @property
    def label(self) -> str:
        """Name shown in menus and buttons."""
        return _MODE_LABELS[self]

    @classmethod
    def parse(cls, value: str, default: ViewMode | None = None) -> ViewMode:
        """The mode named ``value`` (as stored in the settings), else ``default`` (split)."""
        try:
            return cls(value)
        except ValueError:
            return default or cls.SPLIT


_MODE_LABELS = {
    ViewMode.SIDE_BY_SIDE: "Side by side",
    ViewMode.SPLIT: "Split",
    ViewMode.TOGGLE: "Toggle",
    ViewMode.HEATMAP: "Heat map",
}

MIN_ZOOM, MAX_ZOOM = 1 / 32, 32.0
PIXEL_ZOOM = 2.0  # from this zoom on, pixels are shown as squares (no smoothing)
WHEEL_STEP = 1.25  # zoom factor per wheel notch
DIVIDER_GRAB_PX = 10  # how close to the divider a press grabs it
HANDLE_RADIUS = 15
PANE_GAP = 4

BACKGROUND = QColor(24, 25, 28)
LABEL_BACKGROUND = QColor(0, 0, 0, 150)
WARNING_BACKGROUND = QColor(120, 72, 0, 210)
DROP_HIGHLIGHT = QColor(90, 160, 255)


class ComparisonView(QWidget):
    """Paints the original and the result in the chosen mode, with shared zoom and pan.

    Signals:
        split_changed(float): the divider moved (fraction of the pane's width).
        zoom_changed(float): the effective scale changed (1.0 is 1:1).
        frame_painted(object, float, float): a newly set frame was painted: its token, the
            paint time in milliseconds and the ``perf_counter`` time the paint ended.
        mode_changed(ViewMode): the mode changed.
    """

    split_changed = Signal(float)
    zoom_changed = Signal(float)
    frame_painted = Signal(object, float, float)
    mode_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        # Every pixel is painted by paintEvent, so Qt need not clear the widget first.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._original: QImage | None = None
        self._size = QSizeF()
        self._result: QImage | None = None
        self._heat: QImage | None = None
        self._keep: object = None  # the arrays the images wrap
        self._token: object = None
        self._mode = ViewMode.SPLIT
        self._zoom: float | None = None  # None: fit
        self._center = QPointF()
        self._split = 0.5
        self._show_original = False
        self._result_label = "Deblurred"
        self._notice = ""
        self._heat_gain = 4.0
        self._empty_title = "No video open"
        self._empty_hint = (
            "Open a video or an image (Ctrl+O), pick a camera, open the sample clip, "
            "or drop a file here."
        )
        self._drop_highlight = False
        self._drag: str | None = None
        self._last_pos = QPointF()
        self._legend_array = heatmap_legend(256)
        self._legend = rgb_qimage(self._legend_array)
        self._handle: QImage | None = None

    # -- content -----------------------------------------------------------------------

    def set_frames(
        self,
        original: QImage,
        result: QImage,
        heatmap: QImage | None = None,
        *,
        size: tuple[int, int] | None = None,
        keep: object = None,
        token: object = None,
        heat_gain: float = 4.0,
    ) -> None:
        """Show a new pair (repainted on the next paint event).

        The images may have been resized already (see :meth:`prescale`): ``size`` gives the
        frame's real size, and images made for the current scale are copied to the screen
        pixel for pixel instead of being resampled.

        Args:
            original: the input frame.
            result: the deblurred frame.
            heatmap: the difference heat map (heat-map mode), if computed.
            size: ``(width, height)`` of the frames (default: the images' own size).
            keep: whatever owns the pixels the images wrap; held until the next pair.
            token: handed back by ``frame_painted`` once this pair is painted.
            heat_gain: the heat map's amplification (for its legend).
        """
        old = self.image_size()
        self._original, self._result, self._heat = original, result, heatmap
        self._size = QSizeF(*size) if size is not None else QSizeF(original.size())
        self._keep, self._token, self._heat_gain = keep, token, heat_gain
        if old != self.image_size():
            self._center = QPointF(self._size.width() / 2.0, self._size.height() / 2.0)
            self.zoom_changed.emit(self.scale())
        self.update()

    def clear(self) -> None:
        """Show the empty state."""
        self._original = self._result = self._heat = None
        self._keep = self._token = None
        self.update()

    def has_frames(self) -> bool:
        """Whether a pair is shown."""
        return self._original is not None

    def set_result_label(self, text: str) -> None:
        """The result's label (e.g. ``Deblurred``; ``No model`` when none runs)."""
        if text != self._result_label:
            self._result_label = text
            self.update()

    def set_notice(self, text: str) -> None:
        """A line shown at the bottom of the result pane (e.g. no model loaded)."""
        if text != self._notice:
            self._notice = text
            self.update()

    def set_empty_message(self, title: str, hint: str) -> None:
        """What the view says while no frame is shown."""
        self._empty_title, self._empty_hint = title, hint
        self.update()

    def set_drop_highlight(self, on: bool) -> None:
        """Outline the view while a file is dragged over the window."""
        if on != self._drop_highlight:
            self._drop_highlight = on
            self.update()

    # -- mode, divider, original -------------------------------------------------------

    def mode(self) -> ViewMode:
        """The current mode."""
        return self._mode

    def set_mode(self, mode: ViewMode) -> None:
        """Switch mode (zoom and centre are kept; fit refits to the new pane size)."""
        if mode != self._mode:
            self._mode = mode
            self.mode_changed.emit(mode)
            self.zoom_changed.emit(self.scale())
            self.update()

    def split(self) -> float:
        """Divider position as a fraction of the pane width."""
        return self._split

    def set_split(self, fraction: float) -> None:
        """Move the divider (fraction of the pane width, clipped to [0, 1])."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction != self._split:
            self._split = fraction
            self.split_changed.emit(fraction)
            self.update()

    def divider_x(self) -> float:
        """The divider's x coordinate in the widget (split mode)."""
        pane = self.pane_rects()[0]
        return pane.left() + self._split * pane.width()

    def showing_original(self) -> bool:
        """Whether the original is shown in place of the result (Space held)."""
        return self._show_original

    def set_show_original(self, on: bool) -> None:
        """Show the original in place of the result (while Space is held)."""
        if on != self._show_original:
            self._show_original = on
            self.update()

    # -- geometry ----------------------------------------------------------------------

    def image_size(self) -> QSizeF:
        """Size of the frames shown, in frame pixels (empty when none)."""
        if self._original is None:
            return QSizeF()
        return QSizeF(self._size)

    def prescale(self) -> float:
        """The scale frames should be resized to before they reach the view.

        Below 2× that is the view's own scale, so painting only copies pixels; from 2× on
        the painter enlarges frames itself, as crisp squares (pixel peeping), and frames
        come at their own size (1).
        """
        scale = self.scale()
        return scale if scale < PIXEL_ZOOM else 1.0

    def pane_rects(self) -> list[QRectF]:
        """The panes in widget coordinates: two side by side, else one."""
        r = QRectF(self.rect())
        if self._mode != ViewMode.SIDE_BY_SIDE:
            return [r]
        # Whole-pixel panes of equal width: the frame then lands on the same pixel grid in
        # both, and the two copies line up exactly.
        w = (int(r.width()) - PANE_GAP) // 2
        gap = int(r.width()) - 2 * w
        return [QRectF(0, 0, w, r.height()), QRectF(w + gap, 0, w, r.height())]

    def fit_scale(self) -> float:
        """The scale at which the whole frame fits a pane."""
        size = self.image_size()
        if size.isEmpty():
            return 1.0
        pane = self.pane_rects()[0]
        return max(min(pane.width() / size.width(), pane.height() / size.height()), 1e-6)

    def scale(self) -> float:
        """Screen pixels per image pixel."""
        return self.fit_scale() if self._zoom is None else self._zoom

    def is_fit(self) -> bool:
        """Whether the view fits the frame to the pane (and refits on resize)."""
        return self._zoom is None

    def center(self) -> QPointF:
        """The image point at the centre of every pane."""
        if self._zoom is None:
            size = self.image_size()
            return QPointF(size.width() / 2.0, size.height() / 2.0)
        return QPointF(self._center)

    def image_rect(self, pane: QRectF) -> QRectF:
        """Where the whole frame lies in widget coordinates inside ``pane``."""
        s = self.scale()
        c = self.center()
        size = self.image_size()
        origin = pane.center() - QPointF(c.x() * s, c.y() * s)
        if abs(s - 1.0) < 1e-9:
            # At 1:1 whole-pixel positions let Qt copy pixels instead of resampling them.
            origin = QPointF(round(origin.x()), round(origin.y()))
        return QRectF(origin, QSizeF(size.width() * s, size.height() * s))

    def map_to_image(self, pos: QPointF) -> QPointF:
        """The image point under a widget position (in the pane that holds it)."""
        pane = self._pane_at(pos)
        s = self.scale()
        c = self.center()
        return QPointF(
            (pos.x() - pane.center().x()) / s + c.x(), (pos.y() - pane.center().y()) / s + c.y()
        )

    def _pane_at(self, pos: QPointF) -> QRectF:
        panes = self.pane_rects()
        for pane in panes:
            if pane.contains(pos):
                return pane
        return panes[-1] if pos.x() > panes[0].right() else panes[0]

    # -- zoom and pan ------------------------------------------------------------------

    def fit(self) -> None:
        """Fit the whole frame in the pane (and keep fitting as the window resizes)."""
        self._zoom = None
        self.zoom_changed.emit(self.scale())
        self.update()

    def actual_size(self) -> None:
        """1:1 — one screen pixel per image pixel, about the current centre."""
        self.zoom_to(1.0)

    def zoom_to(self, scale: float, about: QPointF | None = None) -> None:
        """Zoom to ``scale`` keeping the image point under ``about`` (default: the pane centre)
        where it is."""
        if not self.has_frames():
            return
        about = QPointF(self.pane_rects()[0].center()) if about is None else QPointF(about)
        pane = self._pane_at(about)
        anchor = self.map_to_image(about)
        scale = min(max(scale, MIN_ZOOM), MAX_ZOOM)
        self._zoom = scale
        self._center = QPointF(
            anchor.x() - (about.x() - pane.center().x()) / scale,
            anchor.y() - (about.y() - pane.center().y()) / scale,
        )
        self._clamp_center()
        self.zoom_changed.emit(scale)
        self.update()

    def zoom_by(self, factor: float, about: QPointF | None = None) -> None:
        """Multiply the scale by ``factor`` about a widget point."""
        self.zoom_to(self.scale() * factor, about)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) screen pixels in every pane."""
        if not self.has_frames():
            return
        if self._zoom is None:
            self._center = self.center()
            self._zoom = self.fit_scale()
        s = self._zoom
        self._center = QPointF(self._center.x() - dx / s, self._center.y() - dy / s)
        self._clamp_center()
        self.update()

    def _clamp_center(self) -> None:
        size = self.image_size()
        self._center = QPointF(
            min(max(self._center.x(), 0.0), size.width()),
            min(max(self._center.y(), 0.0), size.height()),
        )

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """A fitted frame changes scale with the widget."""
        super().resizeEvent(event)
        if self._zoom is None and self.has_frames():
            self.zoom_changed.emit(self.scale())

    # -- input -------------------------------------------------------------------------

    def _near_divider(self, pos: QPointF) -> bool:
        if self._mode != ViewMode.SPLIT or self._show_original or not self.has_frames():
            return False
        return abs(pos.x() - self.divider_x()) <= max(DIVIDER_GRAB_PX, 1)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Grab the divider, or start panning; the right button shows the original."""
        pos = event.position()
        if event.button() == Qt.MouseButton.RightButton:
            self.set_show_original(True)
            self._drag = "original"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            if event.button() == Qt.MouseButton.LeftButton and self._near_divider(pos):
                self._drag = "divider"
            elif self.has_frames():
                self._drag = "pan"
                self.setCursor(Qt.CursorShape.ClosedHandCursor)
            self._last_pos = pos
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Drag the divider or pan; otherwise show what a press would do."""
        pos = event.position()
        if self._drag == "divider":
            pane = self.pane_rects()[0]
            self.set_split((pos.x() - pane.left()) / max(pane.width(), 1.0))
        elif self._drag == "pan":
            delta = pos - self._last_pos
            self._last_pos = pos
            self.pan_by(delta.x(), delta.y())
        elif self._near_divider(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        elif self.has_frames():
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.unsetCursor()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """End a drag."""
        if self._drag == "original":
            self.set_show_original(False)
        self._drag = None
        if self._near_divider(event.position()):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        elif self.has_frames():
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Fit ↔ 1:1 at the cursor."""
        if event.button() != Qt.MouseButton.LeftButton or self._near_divider(event.position()):
            return
        if self._zoom is None or abs(self.scale() - 1.0) > 1e-6:
            self.zoom_to(1.0, event.position())
        else:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        """Zoom about the cursor."""
        steps = event.angleDelta().y() / 120.0
        if steps and self.has_frames():
            self.zoom_by(WHEEL_STEP**steps, event.position())
        event.accept()

    # -- painting ----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        """Paint the panes in the current mode; report the time taken for a new frame."""
        t0 = time.perf_counter()
        p = QPainter(self)
        if self._original is None:
            p.fillRect(self.rect(), BACKGROUND)
            self._paint_empty(p)
        else:
            self._paint_background(p)
            self._paint_frames(p)
        if self._drop_highlight:
            p.setPen(QPen(DROP_HIGHLIGHT, 3, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(self.rect()).adjusted(4, 4, -4, -4), 10, 10)
        p.end()
        token, self._token = self._token, None
        if token is not None:
            t1 = time.perf_counter()
            self.frame_painted.emit(token, (t1 - t0) * 1000.0, t1)

    def _paint_background(self, p: QPainter) -> None:
        # Only around the frame: filling under it too would cost a frame-sized pass.
        background = QRegion(self.rect())
        for pane in self.pane_rects():
            inner = self.image_rect(pane).intersected(pane).toAlignedRect().adjusted(1, 1, -1, -1)
            background -= QRegion(inner)
        for rect in background:
            p.fillRect(rect, BACKGROUND)

    def _paint_empty(self, p: QPainter) -> None:
        r = QRectF(self.rect())
        p.setPen(QColor(220, 220, 225))
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        p.setFont(font)
        title = QRectF(r.left() + 20, r.center().y() - 40, r.width() - 40, 36)
        p.drawText(title, Qt.AlignmentFlag.AlignCenter, self._empty_title)
        p.setFont(self.font())
        p.setPen(QColor(160, 162, 170))
        hint = QRectF(r.left() + 40, r.center().y(), r.width() - 80, 60)
        p.drawText(hint, Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap, self._empty_hint)

    def _draw(self, p: QPainter, pane: QRectF, image: QImage, clip: QRectF | None = None) -> None:
        target = self.image_rect(pane)
        area = pane if clip is None else pane.intersected(clip)
        visible = target.intersected(area)
        if visible.isEmpty():
            return
        s = self.scale()
        f = image.width() / max(self._size.width(), 1.0)  # how much the image was resized
        if abs(s - f) <= 2e-3 * s:
            # Resized for this very scale: copy whole pixels, no resampling in the GUI thread.
            ox, oy = round(target.x()), round(target.y())
            left, right = round(area.left()), round(area.right())
            box = QRect(ox, oy, image.width(), image.height()).intersected(
                QRect(left, round(area.top()), right - left, round(area.height()))
            )
            if not box.isEmpty():
                p.drawImage(box.topLeft(), image, box.translated(-ox, -oy))
            return
        source = QRectF(
            (visible.x() - target.x()) / s * f,
            (visible.y() - target.y()) / s * f,
            visible.width() / s * f,
            visible.height() / s * f,
        )
        p.drawImage(visible, image, source)

    def _frame_area(self, pane: QRectF) -> QRectF:
        """The part of ``pane`` the frame covers (labels sit on the frame, not the margin)."""
        area = self.image_rect(pane).intersected(pane)
        return area if area.width() > 60 and area.height() > 40 else pane

    def _paint_frames(self, p: QPainter) -> None:
        # Smooth (bilinear) below 2×; from there on pixels stay crisp squares, so that the
        # comparison at 200 % and more shows what the model really did.
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale() < PIXEL_ZOOM)
        original, result = self._original, self._result or self._original
        result_label = self._result_label
        held = "Original (Space)"
        if self._show_original:
            result, result_label = original, held
        left_align, right_align = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
        panes = self.pane_rects()
        mode = self._mode
        if mode == ViewMode.SIDE_BY_SIDE:
            left, right = panes
            self._draw(p, left, original)
            self._draw(p, right, result)
            self._label(p, self._frame_area(left), "Original", left_align)
            self._label(p, self._frame_area(right), result_label, left_align)
            self._paint_notice(p, self._frame_area(right))
            return
        (pane,) = panes
        area = self._frame_area(pane)
        if mode == ViewMode.SPLIT and not self._show_original:
            x = self.divider_x()
            self._draw(
                p, pane, original, QRectF(pane.left(), pane.top(), x - pane.left(), pane.height())
            )
            self._draw(p, pane, result, QRectF(x, pane.top(), pane.right() - x, pane.height()))
            self._paint_divider(p, area, x)
            # Each label fades out as the divider covers its side.
            self._label(p, area, "Original", left_align, max_x=x)
            self._label(p, area, result_label, right_align, min_x=x)
        elif self._show_original:
            self._draw(p, pane, original)
            self._label(p, area, held, left_align)
        elif mode == ViewMode.HEATMAP and self._heat is not None:
            self._draw(p, pane, self._heat)
            self._label(p, area, f"Difference ×{self._heat_gain:g}", left_align)
            self._paint_legend(p, area)
        elif mode == ViewMode.HEATMAP:
            self._draw(p, pane, result)
            self._label(p, area, "Heat map: waiting for the next frame…", left_align)
        else:
            self._draw(p, pane, result)
            self._label(p, area, f"{result_label} — hold Space for the original", left_align)
        self._paint_notice(p, area)

    def _paint_divider(self, p: QPainter, pane: QRectF, x: float) -> None:
        """The divider at ``x`` across ``pane`` (the frame's area), with its round handle."""
        p.save()
        # Axis-aligned rectangles, not antialiased lines: a full-height antialiased line
        # costs more than copying the frame.
        xi = round(x)
        top, height = round(pane.top()), round(pane.height())
        p.fillRect(QRect(xi - 2, top, 4, height), QColor(0, 0, 0, 90))
        p.fillRect(QRect(xi - 1, top, 2, height), QColor(255, 255, 255, 230))
        handle = self._handle_image()
        ratio = handle.devicePixelRatio()
        p.drawImage(
            QPointF(
                x - handle.width() / (2 * ratio), pane.center().y() - handle.height() / (2 * ratio)
            ),
            handle,
        )
        p.restore()

    def _handle_image(self) -> QImage:
        """The divider's round handle, drawn once (antialiased shapes are slow to repeat)."""
        ratio = self.devicePixelRatioF()
        if self._handle is not None and self._handle.devicePixelRatio() == ratio:
            return self._handle
        side = 2 * HANDLE_RADIUS + 4
        image = QImage(
            round(side * ratio), round(side * ratio), QImage.Format.Format_ARGB32_Premultiplied
        )
        image.setDevicePixelRatio(ratio)
        image.fill(Qt.GlobalColor.transparent)
        p = QPainter(image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        c = QPointF(side / 2, side / 2)
        p.setPen(QPen(QColor(0, 0, 0, 80), 1))
        p.setBrush(QColor(255, 255, 255, 235))
        p.drawEllipse(c, HANDLE_RADIUS, HANDLE_RADIUS)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(40, 40, 46))
        for sign in (-1, 1):
            tip = c + QPointF(sign * 10, 0)
            base = c + QPointF(sign * 3, 0)
            p.drawPolygon(QPolygonF([tip, base + QPointF(0, -5), base + QPointF(0, 5)]))
        p.end()
        self._handle = image
        return image

    def _label(
        self,
        p: QPainter,
        pane: QRectF,
        text: str,
        align: Qt.AlignmentFlag,
        min_x: float | None = None,
        max_x: float | None = None,
    ) -> None:
        metrics = p.fontMetrics()
        w = metrics.horizontalAdvance(text) + 16
        h = metrics.height() + 8
        if align == Qt.AlignmentFlag.AlignRight:
            rect = QRectF(pane.right() - w - 10, pane.top() + 10, w, h)
        else:
            rect = QRectF(pane.left() + 10, pane.top() + 10, w, h)
        opacity = 1.0
        if max_x is not None:
            opacity = min(1.0, max(0.0, (max_x - rect.right()) / 24.0 + 1.0))
        if min_x is not None:
            opacity = min(1.0, max(0.0, (rect.left() - min_x) / 24.0 + 1.0))
        if opacity <= 0.0:
            return
        p.save()
        p.setOpacity(opacity)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        path = QPainterPath()
        path.addRoundedRect(rect, 6, 6)
        p.fillPath(path, LABEL_BACKGROUND)
        p.setPen(QColor(255, 255, 255))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    def _paint_notice(self, p: QPainter, pane: QRectF) -> None:
        if not self._notice:
            return
        metrics = p.fontMetrics()
        w = min(metrics.horizontalAdvance(self._notice) + 24, pane.width() - 20)
        h = metrics.height() + 12
        rect = QRectF(pane.center().x() - w / 2, pane.bottom() - h - 14, w, h)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        path = QPainterPath()
        path.addRoundedRect(rect, 8, 8)
        p.fillPath(path, WARNING_BACKGROUND)
        p.setPen(QColor(255, 255, 255))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._notice)
        p.restore()

    def _paint_legend(self, p: QPainter, pane: QRectF) -> None:
        bar = QRectF(pane.right() - 230, pane.bottom() - 36, 200, 12)
        p.save()
        p.fillRect(bar.adjusted(-8, -6, 8, 22), LABEL_BACKGROUND)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(bar, self._legend)
        p.setPen(QColor(230, 230, 230))
        below = QRectF(bar.left(), bar.bottom() + 1, bar.width(), 16)
        p.drawText(below, Qt.AlignmentFlag.AlignLeft, "same")
        top = 255.0 / self._heat_gain
        p.drawText(below, Qt.AlignmentFlag.AlignRight, f"≥ {top:.0f} levels")
        p.restore()
