"""Baselines for the regression gate: a frozen copy of a results table plus where it was measured.

A baseline is ``baselines/NAME.parquet`` (every row of the results it was saved from) and ``baselines/NAME.json``
beside it (device, library versions, git sha, creation date) for people and code review. The same metadata is
also stored inside the Parquet file's key-value metadata, so a baseline copied without its JSON still says where
it came from.

Accuracy and wall time depend on the GPU and on library versions (cuDNN kernels, a changed default in timm), so
a comparison across environments is reported loudly: a "regression" there may be the environment's doing.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.infra.atomic import atomic_path, write_json
from bench.core.errors import UserError
from bench.results import load_results, to_frame

DEFAULT_DIR = "baselines"
META_KEY = b"transferbench.baseline"
# Columns the gate cannot work without; a file lacking them is not a baseline whatever its suffix says.
REQUIRED = ("task", "backbone", "strategy", "fraction", "seed", "params", "status", "accuracy")


def environment_of(frame: pd.DataFrame) -> dict[str, Any]:
    """Summarise where the rows of a results table were measured.

    Returns:
        ``{"devices": [...], "versions": {package: version}, "git_sha": [...]}``. A package seen with several
        versions across rows (a suite resumed after an upgrade) is recorded as ``"1.0 | 1.1"``.
    """
    devices = sorted({str(d) for d in frame.get("device", pd.Series(dtype=object)).dropna() if str(d)})
    shas = sorted({str(s) for s in frame.get("git_sha", pd.Series(dtype=object)).dropna() if str(s)})
    seen: dict[str, Counter] = {}
    for text in frame.get("versions", pd.Series(dtype=object)).dropna():
        try:
            versions = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            continue
        for package, version in (versions or {}).items() if isinstance(versions, dict) else ():
            seen.setdefault(package, Counter())[str(version)] += 1
    versions = {pkg: " | ".join(sorted(counts)) for pkg, counts in sorted(seen.items())}
    return {"devices": devices, "versions": versions, "git_sha": shas}


def environment_warnings(baseline_env: dict[str, Any], results_env: dict[str, Any]) -> list[str]:
    """One line per difference in device or library versions between a baseline and new results."""
    lines = []
    base_dev, new_dev = baseline_env.get("devices") or [], results_env.get("devices") or []
    if base_dev and new_dev and base_dev != new_dev:
        lines.append(f"device differs: baseline ran on {', '.join(base_dev)}, results on {', '.join(new_dev)}"
                     " (wall times are not comparable across devices)")
    base_ver, new_ver = baseline_env.get("versions") or {}, results_env.get("versions") or {}
    changed = [f"{pkg} {base_ver.get(pkg, 'none')} → {new_ver.get(pkg, 'none')}"
               for pkg in sorted(set(base_ver) | set(new_ver)) if base_ver.get(pkg) != new_ver.get(pkg)]
    # A package missing on both sides of the metadata means the runner did not record it; say nothing then.
    if changed and base_ver and new_ver:
        lines.append(f"library versions differ: {', '.join(changed)}")
    return lines


def baseline_path(name: str, directory: str | Path = DEFAULT_DIR) -> Path:
    """Where ``baseline save --name NAME`` writes (``DIR/NAME.parquet``)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(f"baseline name {name!r} is not a plain file name; use e.g. --name ci-gpu")
    return Path(directory) / f"{name}.parquet"


def save_baseline(results_dir: str | Path, name: str, directory: str | Path = DEFAULT_DIR,
                  force: bool = False) -> Path:
    """Store every row of ``results_dir`` as baseline ``NAME`` and return the Parquet path.

    Raises:
        UserError: no results, no successful row, or the baseline exists and ``force`` is false (a baseline is a
            reference point; replacing one should be a decision, not a side effect of a rerun).
    """
    frame = load_results(results_dir)
    path = baseline_path(name, directory)
    if path.exists() and not force:
        raise UserError(f"baseline {path} already exists; pass --force to replace it")
    ok = int((frame["status"] == "ok").sum())
    if ok == 0:
        raise UserError(f"{results_dir}: no successful cell to save as a baseline (every row is an error or skip)")
    meta = {
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": str(results_dir),
        "suites": sorted({str(s) for s in frame["suite"].dropna()}),
        "rows": len(frame),
        "ok_rows": ok,
        "error_rows": int((frame["status"] == "error").sum()),
        **environment_of(frame),
    }
    # The p_* columns are derived from ``params`` (to_frame rebuilds them on load) and may mix types across
    # strategies, which Parquet cannot store in one column; keep the source of truth only.
    frame = frame[[c for c in frame.columns if not c.startswith("p_")]]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    write_json(path.with_suffix(".json"), meta)
    return path


def resolve_baseline(spec: str | Path, directory: str | Path = DEFAULT_DIR) -> Path:
    """Accept a path (baseline Parquet, results directory or results file) or a saved baseline's name."""
    path = Path(spec)
    if path.exists():
        return path
    named = Path(directory) / f"{spec}.parquet"
    if path.suffix == "" and named.exists():
        return named
    raise UserError(f"baseline {spec} not found (neither a file, a results directory nor {named}); "
                    "save one with: transferbench baseline save RESULTS_DIR --name NAME")


def load_baseline(spec: str | Path, directory: str | Path = DEFAULT_DIR) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a baseline and its metadata.

    Args:
        spec: a saved baseline (``.parquet``), its name, or any results directory / file (then the metadata is
            derived from the rows, which carry device and versions themselves).
        directory: where named baselines live.

    Returns:
        ``(rows, meta)``; ``meta`` has at least ``devices``, ``versions`` and ``git_sha``.

    Raises:
        UserError: one line for a missing, unreadable or foreign file.
    """
    path = resolve_baseline(spec, directory)
    if path.is_dir() or path.suffix != ".parquet":
        frame = load_results(path)
        return _validated(frame, path), {"name": path.name, "source": str(path), **environment_of(frame)}
    try:
        table = pq.read_table(path)
        frame = table.to_pandas()
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for a truncated or foreign file
        raise UserError(f"baseline {path} is corrupt or not Parquet ({type(err).__name__}); "
                        "save it again with: transferbench baseline save RESULTS_DIR --name NAME") from None
    meta = _read_meta(path, table.schema.metadata or {})
    frame = _validated(frame, path)
    frame = to_frame(frame.to_dict("records"))
    return frame, {**environment_of(frame), **meta}


def _read_meta(path: Path, schema_meta: dict[bytes, bytes]) -> dict[str, Any]:
    """Metadata from inside the Parquet file, else from the JSON sidecar, else nothing (derived from rows)."""
    sidecar = path.with_suffix(".json")
    try:
        if META_KEY in schema_meta:
            meta = json.loads(schema_meta[META_KEY])
        elif sidecar.is_file():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        else:
            return {}
    except (ValueError, OSError):
        raise UserError(f"baseline metadata of {path} is unreadable; save the baseline again") from None
    if not isinstance(meta, dict):
        raise UserError(f"baseline metadata of {path} is not a JSON object; save the baseline again")
    return meta


def _validated(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"baseline {path} lacks column(s) {', '.join(missing)}, so it is not a transferbench "
                        "baseline; save one with: transferbench baseline save RESULTS_DIR --name NAME")
    return frame
