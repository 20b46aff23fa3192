"""An infinite, seeded, resumable, DDP-sharded index sampler and the dataset view it feeds.

Training is iteration-based: the data never "ends". :class:`InfiniteSampler` walks an endless
sequence of global positions ``0, 1, 2, …``; position ``p`` lies in pass ``p // N`` over a
dataset of ``N`` items and names the item at offset ``p % N`` of that pass's permutation (a
function of ``(seed, pass)`` only). With ``W`` processes, rank ``r`` takes the positions
``p ≡ r (mod W)``. The whole order is therefore a function of the seed, and a run resumed
from global position ``p`` sees exactly the items an uninterrupted run saw from ``p`` on.

The sampler yields ``(pass, index)`` pairs; :class:`EpochIndexedDataset` hands the pass to the
dataset as its epoch (``set_epoch``) before making the item, so every item depends only on
``(seed, pass, index)`` — whichever DataLoader worker makes it, with any number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


class InfiniteSampler:
    """Endless shuffled passes over ``size`` items, sharded by rank; see the module docs.

    Args:
        size: items per pass (the dataset length).
        seed: seed of the permutations.
        shuffle: shuffle each pass (else the natural order).
        rank: this process's rank.
        world_size: number of processes.
        start: global position to start from (a resumed run's saved position).

    Yields:
        ``(pass, index)`` pairs.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ) -> None:
        if size < 1:
            raise ValueError(f"cannot sample from an empty dataset (size {size})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if start < 0:
            raise ValueError(f"start must be ≥ 0, got {start}")
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self.rank, self.world_size, self.start = int(rank), int(world_size), int(start)
        self._cached: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """The item order of pass ``epoch``."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        if self.shuffle:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), 0x5A3]))
            perm = rng.permutation(self.size)
        else:
            perm = np.arange(self.size)
        self._cached = (int(epoch), perm)
        return perm

    def item_at(self, position: int) -> tuple[int, int]:
        """``(pass, index)`` at a global position."""
        epoch, offset = divmod(int(position), self.size)
        return epoch, int(self.order(epoch)[offset])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Yield this rank's items from :attr:`start` on, forever."""
        # The first global position at or after ``start`` that belongs to this rank.
        pos = self.start + (self.rank - self.start) % self.world_size
        while True:
            yield self.item_at(pos)
            pos += self.world_size

    def state_dict(self, position: int) -> dict[str, Any]:
        """What a checkpoint needs to continue from global ``position`` (samples consumed by
        all ranks together)."""
        return {
            "size": self.size,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "position": int(position),
            "world_size": self.world_size,
        }

    @staticmethod
    def position_from(state: Mapping[str, Any] | None, size: int, seed: int) -> int:
        """The global position to resume from, after checking the data did not change.

        Raises:
            ValueError: the saved sampler walked another dataset size or seed.
        """
        if not state:
            return 0
        if int(state["size"]) != size or int(state["seed"]) != seed:
            raise ValueError(
                f"the checkpoint's data order was for {state['size']} items with seed "
                f"{state['seed']}; this run has {size} items with seed {seed}: resuming would "
                "not continue the same data order"
            )
        return int(state["position"])


class EpochIndexedDataset:
    """A map-style dataset view indexed by ``(pass, index)`` from :class:`InfiniteSampler`.

    Sets the wrapped dataset's epoch (if it has ``set_epoch``) to the pass, then returns its
    item. Each DataLoader worker holds its own copy of the dataset, so the epoch set here
    affects only the item that worker is making.

    Args:
        dataset: a map-style dataset (``SyntheticBlurDataset``, ``PairedFolderDataset``, …).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        return self.dataset[index]
