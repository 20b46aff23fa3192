"""Help → Keyboard shortcuts: the table the window's actions are made from, and the mouse."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.shortcuts import MOUSE_HELP, SHORTCUTS


def _native(keys: tuple[str, ...]) -> str:
    shown = []
    for key in keys:
        text = QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)
        shown.append(text or key)
    return ", ".join(shown)


def shortcut_rows() -> list[tuple[str, str, str]]:
    """(group, keys, what it does) for every shortcut and mouse gesture, in display order."""
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for item in SHORTCUTS:
        groups.setdefault(item.group, []).append((item.group, _native(item.keys), item.text))
    rows = []
    for rows_of_group in groups.values():
        rows.extend(rows_of_group)
    rows.extend(("Mouse", gesture, text) for gesture, text in MOUSE_HELP)
    return rows


class ShortcutsDialog(QDialog):
    """A table of every keyboard shortcut and mouse gesture."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 640)
        rows = shortcut_rows()
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["", "Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        bold = QFont(self.font())
        bold.setBold(True)
        previous = None
        for i, (group, keys, text) in enumerate(rows):
            # The group is named on its first row only, as a heading.
            heading = QTableWidgetItem(group if group != previous else "")
            heading.setFont(bold)
            key_item = QTableWidgetItem(keys)
            key_item.setFont(bold)
            key_item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            for column, item in enumerate((heading, key_item, QTableWidgetItem(text))):
                self.table.setItem(i, column, item)
            previous = group
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
