import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.backends.select import select_backend
from engine.backends.streams import StreamedBackend, split_threads
from engine.resources import resolve_model
from tests.engine.fakes import Recorder

PHOTOS = Path(__file__).parents[3].parent / "shared/data" / "photos"


def _batch(n, h=4, w=5):
    return np.stack([np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)])


def test_frames_are_spread_in_order_and_run_side_by_side():
    gate = threading.Barrier(3)
    copies = [Recorder(i, gate=gate) for i in range(3)]
    with StreamedBackend(copies) as streamed:
        assert streamed.streams == 3 and streamed.name == "recorder"
        frames = _batch(7)
        out = streamed.infer(frames)
        # Contiguous runs 0-1, 2-3, 4-6; each frame carries the index of the copy it ran on.
        assert [int(out[i, 0, 0, 0]) - 10 * i for i in range(7)] == [0, 0, 1, 1, 2, 2, 2]
        assert [c.calls for c in copies] == [[2], [2], [3]]
        assert len(set().union(*(c.threads for c in copies))) == 3
        assert streamed.infer(frames) is out  # same shape: the output buffer is reused
        gate.reset()
    assert all(c.closed for c in copies)
    with pytest.raises(RuntimeError, match="closed"):
        streamed.infer(frames)


def test_small_batches_and_warmup_use_what_they_need():
    copies = [Recorder(i) for i in range(2)]
    streamed = StreamedBackend(copies)
    one = _batch(1)
    assert streamed.infer(one) is copies[0]._out  # one frame: the first copy alone
    streamed.warmup((1, 4, 5, 3))
    assert copies[0].calls == [1, ("warmup", 1)] and copies[1].calls == [("warmup", 1)]
    streamed.close()


def test_a_failing_copy_raises_after_every_copy_finished():
    copies = [Recorder(0), Recorder(1, fail=True)]
    streamed = StreamedBackend(copies)
    with pytest.raises(RuntimeError, match="copy 1 failed"):
        streamed.infer(_batch(4))
    assert copies[0].calls == [2]
    streamed.close()


def test_build_shares_the_threads_and_closes_what_it_made_on_failure():
    made = []

    def make(threads):
        if len(made) == 2:
            raise RuntimeError("no more")
        made.append((threads, Recorder(len(made))))
        return made[-1][1]

    assert split_threads(2, 2) == 1 and split_threads(8, 3) == 2 and split_threads(1, 4) == 1
    with pytest.raises(ValueError, match="streams must be"):
        split_threads(2, 0)
    single = StreamedBackend.build(make, 1, 4)
    assert isinstance(single, Recorder) and made[0][0] == 4  # one stream: not wrapped
    made.clear()
    with pytest.raises(RuntimeError, match="no more"):
        StreamedBackend.build(make, 3, 6)
    assert [t for t, _ in made] == [2, 2] and all(r.closed for _, r in made)
    with pytest.raises(ValueError, match="at least one"):
        StreamedBackend([])


def test_onnxruntime_streams_give_the_single_session_output_on_real_photos():
    card = resolve_model("fpn_mobilenet_dsc")
    photos = sorted((PHOTOS / "val").glob("*.jpg"))[:3]
    if len(photos) < 3:
        pytest.skip(f"real photos not found under {PHOTOS}")
    frames = np.stack(
        [cv2.cvtColor(cv2.imread(str(p))[:200, :304], cv2.COLOR_BGR2RGB) for p in photos]
    )
    single = select_backend(card, "onnxruntime", threads=2)
    sel = select_backend(card, "onnxruntime", threads=2, streams=2)
    try:
        streamed = sel.backend
        assert isinstance(streamed, StreamedBackend) and streamed.streams == 2
        assert [b.threads for b in streamed.backends] == [1, 1]
        assert "2 streams" in sel.describe()
        want = np.stack([single.backend.infer(f[None])[0].copy() for f in frames])
        got = streamed.infer(frames)
        assert np.abs(got.astype(int) - want).max() <= 1
    finally:
        single.backend.close()
        sel.backend.close()
