"""Keyboard shortcuts: one table that both creates the window's actions and the Help listing.

Space is not in Qt's shortcut system: it is held (show the original while it is down), which
shortcuts cannot express, so the main window watches its press and release itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    """One keyboard shortcut.

    Attributes:
        action: the window action's id.
        keys: Qt key sequences (the first is shown in menus).
        text: what it does.
        group: heading in the Help listing.
    """

    action: str
    keys: tuple[str, ...]
    text: str
    group: str


HOLD_ORIGINAL = Shortcut("hold_original", ("Space",), "Hold to show the original", "View")

SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open_file", ("Ctrl+O",), "Open a video, an image or a folder…", "Source"),
    Shortcut("open_sample", ("Ctrl+Shift+O",), "Open the sample clip", "Source"),
    Shortcut("play_pause", ("K", "P"), "Play / pause", "Playback"),
    Shortcut("step_back", (",", "Left"), "Previous frame", "Playback"),
    Shortcut("step_forward", (".", "Right"), "Next frame", "Playback"),
    Shortcut("seek_back", ("J", "Shift+Left"), "Back 5 seconds", "Playback"),
    Shortcut("seek_forward", ("L", "Shift+Right"), "Forward 5 seconds", "Playback"),
    Shortcut("seek_start", ("Home",), "Go to the start", "Playback"),
    HOLD_ORIGINAL,
    Shortcut("mode_side_by_side", ("S",), "Side by side", "View"),
    Shortcut("mode_split", ("W",), "Split (wipe) with a draggable divider", "View"),
    Shortcut("mode_toggle", ("T",), "Toggle (result; hold Space for the original)", "View"),
    Shortcut("mode_heatmap", ("H",), "Difference heat map", "View"),
    Shortcut("zoom_fit", ("F",), "Fit to the window", "View"),
    Shortcut("zoom_actual", ("1",), "Actual pixels (1:1)", "View"),
    Shortcut("zoom_in", ("+", "="), "Zoom in", "View"),
    Shortcut("zoom_out", ("-",), "Zoom out", "View"),
    Shortcut("intensity_down", ("[",), "Intensity −10 %", "View"),
    Shortcut("intensity_up", ("]",), "Intensity +10 %", "View"),
    Shortcut("full_screen", ("F11",), "Full screen", "View"),
    Shortcut("record", ("Ctrl+R",), "Start / stop recording", "Output"),
    Shortcut("snapshot", ("Ctrl+S",), "Save the current pair as PNG", "Output"),
    Shortcut("process_files", ("Ctrl+P",), "Process files…", "Output"),
    Shortcut("shortcuts", ("F1",), "This list", "Help"),
    Shortcut("quit", ("Ctrl+Q",), "Quit", "Help"),
)

MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Wheel", "Zoom about the cursor (both images)"),
    ("Drag", "Pan (both images)"),
    ("Drag the divider", "Move the split"),
    ("Double-click", "Fit ↔ 1:1 at the cursor"),
    ("Right button (hold)", "Show the original"),
    ("Drop a file", "Open it"),
)


def shortcut(action: str) -> Shortcut:
    """The shortcut of an action id."""
    for item in SHORTCUTS:
        if item.action == action:
            return item
    raise KeyError(action)
