"""Tasks built from the user's own files, declared in a suite next to the built-in tasks::

    tasks:
      - fashion-mnist
      - {name: my-photos, kind: image-folder, path: ~/data/photos}
      - {name: my-tickets, kind: text-table, path: tickets.csv, text: body, label: queue}

``make_task(spec)`` turns one such entry into a ``Task`` that behaves like a built-in one. Its ``version`` carries
a fingerprint of the data (and of the options that shape it), so a changed folder or file gives new cell keys;
``task.fingerprint()`` recomputes it, and ``task.spec`` is the normalised entry (absolute paths, defaults filled
in) from which ``make_task`` rebuilds the same task in a worker process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core.errors import UserError
from bench.owndata.common import OwnTask, OwnTaskData, check_name
from bench.owndata.image_folder import ImageFolderTask
from bench.owndata.text_table import TextTableTask

KINDS: dict[str, type[OwnTask]] = {ImageFolderTask.kind_name: ImageFolderTask, TextTableTask.kind_name: TextTableTask}

__all__ = ["KINDS", "ImageFolderTask", "OwnTask", "OwnTaskData", "TextTableTask", "make_task"]


def make_task(spec: dict[str, Any], base_dir: Path | None = None) -> OwnTask:
    """Build a user-data task from one suite entry.

    Args:
        spec: ``{"name": slug, "kind": "image-folder" | "text-table", "path": ..., **options}``. Image folders take
            ``image_size`` (stored pixels, default 128), ``test_size`` (share or count, default 0.2) and ``seed``
            (default 0); text tables take ``text`` / ``label`` (column names, defaults 'text' / 'label'),
            ``split`` (column, default 'split' when present; null to ignore it), ``format`` (csv, tsv, jsonl,
            json, parquet; default from the extension), ``train`` / ``test`` (two files instead of ``path``),
            ``test_size`` and ``seed``. Both take ``description``.
        base_dir: where relative paths start (the suite file's folder); the working folder when None.

    Returns:
        The task. Nothing is read yet beyond checking the options: ``metadata`` scans the data, ``load`` decodes.

    Raises:
        UserError: an unknown kind or option, a bad name or option value.
    """
    if not isinstance(spec, dict):
        raise UserError(f"a task entry must be a name or a mapping with name, kind and path, got {spec!r}")
    check_name(spec.get("name"))
    kind = spec.get("kind")
    if kind not in KINDS:
        raise UserError(f"task {spec['name']!r}: unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return KINDS[kind].from_spec(spec, base_dir)
