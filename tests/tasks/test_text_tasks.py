"""Text tasks: the offline corpora's preparation rules and the Hugging Face loaders on small generated files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.plan import registry
from bench.core.errors import UserError
from tasks.ag_news import AGNews
from tasks.imdb import IMDB
from tasks.rotten_tomatoes import RottenTomatoes
from tasks.spam_assassin import SpamAssassin, mail_text
from tasks.sst2 import SST2

TEXT_TASKS = ["rotten-tomatoes", "spam-assassin", "sst2", "imdb", "ag_news"]


@pytest.mark.parametrize("name", TEXT_TASKS)
def test_text_tasks_are_registered_with_prompts(name):
    meta = registry.get("task", name).metadata
    assert meta.modality == "text" and meta.label_prompts and len(meta.label_prompts) == meta.num_classes


def rt_frame(n: int = 100) -> pd.DataFrame:
    rows = [{"category": "fresh" if i % 3 else "rotten", "text": f"review number {i}", "movie_name": "m"}
            for i in range(n)]
    rows += [{"category": "plot", "text": "A plot summary.", "movie_name": "m"},
             {"category": "fresh", "text": "review   number 1", "movie_name": "m"}]  # duplicate after clean-up
    return pd.DataFrame(rows)


def test_rotten_tomatoes_drops_plots_and_duplicates_and_splits_20_percent(tmp_path, monkeypatch):
    path = tmp_path / "rotten_tomatoes_corpus_full.csv.bz2"
    rt_frame().to_csv(path, index=False)
    monkeypatch.setenv("TRANSFERBENCH_DATA_ROTTEN_TOMATOES", str(tmp_path))
    data = RottenTomatoes().load()
    assert len(data.train) + len(data.test) == 100 and len(data.test) == 20
    assert "A plot summary." not in data.train.x + data.test.x
    assert data.source.startswith("path:")
    again = RottenTomatoes().load()
    assert again.test.x == data.test.x  # the fixed split does not depend on any run's seed
    assert abs(float(data.test.y.float().mean()) - float(data.train.y.float().mean())) < 0.05  # stratified


def test_rotten_tomatoes_refuses_labels_outside_its_classes():
    frame = rt_frame()
    frame.loc[3, "category"] = "meh"
    with pytest.raises(UserError, match="'meh' is not one of its classes"):
        RottenTomatoes().from_frame(frame, "test")


def test_spam_mail_text_keeps_subject_and_body_text_only():
    raw = ("Received: from relay.example.org\nSubject: Cheap meds NOW\nContent-Type: multipart/alternative; "
           'boundary="b"\n\n--b\nContent-Type: text/plain\n\nBuy today.\n--b\nContent-Type: text/html\n\n'
           "<html><b>Best&nbsp;price</b><script>x()</script></html>\n--b--\n")
    text = mail_text(raw)
    assert text.startswith("Cheap meds NOW") and "Buy today." in text and "Best\xa0price" in text
    assert "relay.example.org" not in text and "<b>" not in text and "x()" not in text


def test_spam_assassin_reads_group_folders(tmp_path, monkeypatch):
    for group, n in (("easy-ham-1", 8), ("spam-2", 4)):
        (tmp_path / group).mkdir()
        for i in range(n):
            record = {"id": str(i), "group": group, "text": f"Subject: {group} {i}\n\nbody {i} of {group}"}
            (tmp_path / group / f"{i}.json").write_text(json.dumps(record))
    (tmp_path / "file_list.json").write_text("[]")
    monkeypatch.setenv("TRANSFERBENCH_DATA_SPAM_ASSASSIN", str(tmp_path))
    task = SpamAssassin()
    data = task.check_labels(task.load())
    assert len(data.train) + len(data.test) == 12
    assert sorted((data.train.y.tolist() + data.test.y.tolist())) == [0] * 8 + [1] * 4
    assert task.metadata.main_metric == "macro_f1"


def hub_layout(folder, split, frame):
    (folder / "data").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "data" / f"{split}-00000-of-00001.parquet")


@pytest.mark.parametrize("task_cls,text_field,test_split,n_classes",
                         [(SST2, "sentence", "validation", 2), (IMDB, "text", "test", 2), (AGNews, "text", "test", 4)])
def test_hf_loaders_read_the_hub_parquet_layout(tmp_path, monkeypatch, task_cls, text_field, test_split, n_classes):
    task = task_cls()
    frame = pd.DataFrame({text_field: [f"text {i}" for i in range(12)] + [" "], "label": list(range(n_classes)) * 3
                          + [0] * (13 - 3 * n_classes)})
    hub_layout(tmp_path, "train", frame)
    hub_layout(tmp_path, test_split, frame.head(6))
    if task_cls is SST2:  # the hub copy also has an unlabelled test split (label -1): it must not be read
        hub_layout(tmp_path, "test", frame.assign(label=-1))
    monkeypatch.setenv(f"TRANSFERBENCH_DATA_{task.name.upper()}", str(tmp_path))
    data = task.check_labels(task.load())
    assert len(data.train) == 12 and len(data.test) == 6  # the empty text is dropped
    assert data.train.x[1] == "text 1" and int(data.train.y.max()) == n_classes - 1


def test_hf_loader_reads_jsonl_and_refuses_labels_outside_its_classes(tmp_path, monkeypatch):
    for split in ("train", "test"):
        pd.DataFrame({"text": ["a", "b"], "label": [0, 7]}).to_json(tmp_path / f"{split}.jsonl", orient="records",
                                                                     lines=True)
    monkeypatch.setenv("TRANSFERBENCH_DATA_IMDB", str(tmp_path))
    with pytest.raises(UserError, match="label 7 is not one of its classes"):
        IMDB().load()


def test_hf_loader_without_local_data_or_datasets_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets → ImportError
    with pytest.raises(UserError, match="pip install datasets"):
        AGNews().load()


@pytest.mark.assets
def test_real_offline_corpora_have_the_documented_sizes():
    rt = RottenTomatoes().load()
    assert len(rt.train) + len(rt.test) == 12752 and len(rt.test) == 2550
    spam = SpamAssassin().load()
    labels = spam.train.y.tolist() + spam.test.y.tolist()
    assert len(labels) > 5800 and 0.25 < sum(labels) / len(labels) < 0.35
