"""Write a simulation to disk: the five tables in the contract's format and its ground truth under `truth/`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.simulate import Simulation


def write_simulation(sim: Simulation, out_dir: Path, fmt: str = "parquet") -> Path:
    """Write the five tables and `truth/` (customers, channels.json, meta.json) under `out_dir`."""
    from crmdata.contract import write_table

    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    for name, frame in sim.tables.items():
        write_table(frame, out_dir, name, fmt)
    write_table(sim.truth_customers, out_dir / "truth", "customers", fmt)
    (out_dir / "truth" / "channels.json").write_text(json.dumps(sim.truth_channels, indent=2) + "\n")
    (out_dir / "truth" / "meta.json").write_text(json.dumps(sim.meta, indent=2) + "\n")
    return out_dir
