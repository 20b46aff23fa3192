"""The latest-frame slot between two threads of the preview pipeline.

A slot holds at most one item. How a producer behaves when the slot is still full is the
source's policy (see the project's design notes):

* **live** sources (cameras) *replace* the waiting item and count it as dropped: the preview
  shows the newest frame, and latency stays at one frame however slow inference is;
* **files** *wait* until the consumer has taken the item: every frame is shown, and a slow
  model slows playback down instead of skipping frames.

The consumer is told an item is waiting only when the slot goes from empty to full (``put``
returns ``True`` then), so a fast producer cannot flood it with wake-ups.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item hand-over between a producer thread and a consumer thread.

    Args:
        drop_oldest: replace a waiting item (live sources) instead of waiting for the
            consumer (files).

    Attributes:
        dropped: items replaced before the consumer took them.
    """

    def __init__(self, drop_oldest: bool) -> None:
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._item: T | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(
        self,
        item: T,
        interrupted: Callable[[], bool] | None = None,
        on_accept: Callable[[T], None] | None = None,
    ) -> bool:
        """Hand an item over.

        Args:
            item: the item.
            interrupted: for waiting slots, checked while waiting; when it returns true the
                item is not handed over (the producer has been told to stop or to seek).
            on_accept: called with the item at the moment the slot takes it (after any
                wait), e.g. to timestamp it.

        Returns:
            Whether the slot was empty, i.e. whether the consumer must be told. ``False`` also
            when the item was not handed over (closed or interrupted).
        """
        with self._cond:
            if self._closed:
                return False
            if self._item is not None:
                if self.drop_oldest:
                    if on_accept is not None:
                        on_accept(item)
                    self._item = item
                    self.dropped += 1
                    return False
                while self._item is not None and not self._closed:
                    if interrupted is not None and interrupted():
                        return False
                    self._cond.wait(0.05)
                if self._closed:
                    return False
            if on_accept is not None:
                on_accept(item)
            self._item = item
            return True

    def take(self) -> T | None:
        """The waiting item (the slot is then empty), or ``None``."""
        with self._cond:
            item, self._item = self._item, None
            if item is not None:
                self._cond.notify_all()
            return item

    def clear(self) -> None:
        """Discard a waiting item (after a seek: it belongs to the old position)."""
        self.take()

    @property
    def full(self) -> bool:
        """Whether an item is waiting."""
        with self._cond:
            return self._item is not None

    def close(self) -> None:
        """Refuse further items and release a producer waiting in ``put``."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()
