"""Store size per 8-hour night, at 30 s and at 1 s epochs (issue 6: "store size per night").

The epochs are those of a simulated night (edge.sim ground truth, as a perfect pipeline would
report them: values where the state allows, NULL and a reason elsewhere), committed in
batches as ``bedside run`` does (every 100 epochs). The size is the file after the session
closed (the WAL checkpointed into it), for 3 nights so the per-night figure is steady.

    .venv/bin/python tests/bench/store_size.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "edge"))

from store_fixtures import T0, night_epochs  # noqa: E402

from edge.sim import Night  # noqa: E402
from edge.store import Store  # noqa: E402

NIGHTS = 3


def measure(epoch_s: float) -> tuple[float, int, float]:
    """(bytes per night, epochs per night, seconds to write a night) at ``epoch_s``."""
    epochs, events = night_epochs(Night(seed=3), epoch_s)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vitals.db"
        sizes = []
        start = time.perf_counter()
        for n in range(NIGHTS):
            with Store(path) as store:
                store.open_session(
                    source="sim:3", fs=250, epoch_s=epoch_s, software_version="bench",
                    t_utc=T0 + n * 86400,
                )  # fmt: skip
                for i, e in enumerate(epochs):
                    store.add_epoch(e)
                    if i % 100 == 99:
                        store.commit()
                for e in events:
                    store.add_event(e)
                store.close_session(clean=True, t_utc=T0 + n * 86400 + 8 * 3600)
            sizes.append(path.stat().st_size)
        wall = (time.perf_counter() - start) / NIGHTS
    per_night = (sizes[-1] - sizes[0]) / (NIGHTS - 1)
    return per_night, len(epochs), wall


def main() -> None:
    print(f"store size per 8 h night (simulated night seed 3, mean of nights 2..{NIGHTS})")
    for epoch_s in (30.0, 1.0):
        size, n, wall = measure(epoch_s)
        print(
            f"  {epoch_s:>4g} s epochs: {size / 2**10:7.0f} KiB per night, {n} epochs, "
            f"{size / n:5.1f} bytes per epoch, written in {wall:.2f} s; "
            f"the default 256 MiB bound holds {256 * 2**20 / size:,.0f} nights"
        )


if __name__ == "__main__":
    main()
