"""Download the lecture's public data sets into a cache, checking each against a SHA-256 checksum.

``fetch("digits")`` returns the path of ``digits.npz`` in the cache (``~/.cache/dlia``, or
``$DLIA_CACHE_DIR``), downloading it first if it is not there. Each data set lists its sources in
order; the first that answers with the right content wins. A download is verified before anything
is written, and written atomically, so a failed or interrupted download leaves no file behind.

Environment:
    DLIA_CACHE_DIR: the cache folder (default ``~/.cache/dlia``).
    DLIA_DATA_MIRROR: a base URL serving the source files under their own names; when set, it is
        the only source tried (for machines that reach a local mirror but not the internet).
    DLIA_OFFLINE: when set to anything but ``0`` or empty, nothing is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy

from dlia.io.atomic import OutputError, atomic_write
from dlia.io.npz import read_npz

#: refuse anything larger: every data set here is a few MB at most
MAX_BYTES = 64 * 2**20


class DownloadError(RuntimeError):
    """A data set could not be downloaded or did not match its checksum; the message says why and
    names every source tried."""


@dataclass(frozen=True)
class DataSet:
    """One downloadable data set.

    Attributes:
        name: what ``fetch`` and ``dlia data get`` call it.
        filename: the file written into the cache (and looked for by the loaders).
        description: one line for ``dlia data list``.
        urls: sources, tried in order; a mirror serves them under their last path component.
        sha256: checksum of the file's bytes, or, for ``digits``, of the decoded arrays.
        size: approximate size in bytes (for the listing).
        license: where the data comes from and under which terms.
        shipped: the name of the copy installed inside the package (``dlia.data.paths.SHIPPED``),
            which the loaders use first and ``dlia data get`` does not download; None if not shipped.
    """

    name: str
    filename: str
    description: str
    urls: tuple[str, ...]
    sha256: str
    size: int
    license: str
    shipped: str | None = None

    def finish(self, raw: bytes) -> bytes:
        """Check downloaded bytes and return what is written to the cache (raises DownloadError)."""
        if self.name == "digits":
            return _digits_npz(raw, self.sha256)
        digest = hashlib.sha256(raw).hexdigest()
        if digest != self.sha256:
            raise DownloadError(f"checksum mismatch (sha256 {digest[:16]}…, expected {self.sha256[:16]}…)")
        return raw


_GENSIM = "https://raw.githubusercontent.com/piskvorky/gensim/develop/gensim/test/test_data/"

DATASETS: dict[str, DataSet] = {d.name: d for d in (
    DataSet("digits", "digits.npz", "8×8 handwritten digits, 1797 images (scikit-learn's load_digits)",
            ("https://raw.githubusercontent.com/scikit-learn/scikit-learn/main/sklearn/datasets/data/digits.csv.gz",
             "https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/optdigits.tes"),
            "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826", 45_394,
            "UCI Optical Recognition of Handwritten Digits, test set (CC BY 4.0)", shipped="digits.npz"),
    DataSet("tinyshakespeare", "tinyshakespeare.txt", "1.1 MB of Shakespeare, the classic char-rnn corpus",
            ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1_115_394,
            "karpathy/char-rnn (public-domain text)", shipped="tinyshakespeare.txt.gz"),
    DataSet("questions-words", "questions-words.txt", "word2vec analogy questions, 19,544 in 14 sections",
            ("https://raw.githubusercontent.com/tmikolov/word2vec/master/questions-words.txt",
             _GENSIM + "questions-words.txt"),
            "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36", 603_955,
            "Mikolov et al. 2013 (Apache 2.0, word2vec)", shipped="questions-words.txt.gz"),
    DataSet("wordsim353", "wordsim353.tsv", "WordSim-353 word-pair similarity judgements",
            (_GENSIM + "wordsim353.tsv",),
            "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d", 7_186,
            "Finkelstein et al. 2002, as shipped with gensim (LGPL test data)", shipped="wordsim353.tsv.gz"),
    DataSet("simlex999", "simlex999.txt", "SimLex-999 word-pair similarity judgements",
            (_GENSIM + "simlex999.txt",),
            "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d", 18_126,
            "Hill et al. 2015, as shipped with gensim (LGPL test data)"),
)}


def cache_dir() -> Path:
    """Where downloads go: ``$DLIA_CACHE_DIR`` (``~`` expanded, made absolute) or ``~/.cache/dlia``."""
    env = os.environ.get("DLIA_CACHE_DIR")
    return Path(env).expanduser().absolute() if env else Path(os.path.expanduser("~")) / ".cache" / "dlia"


def offline() -> bool:
    """Whether downloads are switched off (``DLIA_OFFLINE`` set to anything but ``0``)."""
    return os.environ.get("DLIA_OFFLINE", "") not in ("", "0")


def sources(ds: DataSet) -> list[str]:
    """The URLs tried for ``ds``: the mirror's alone when ``DLIA_DATA_MIRROR`` is set."""
    mirror = os.environ.get("DLIA_DATA_MIRROR")
    if mirror:
        return [f"{mirror.rstrip('/')}/{ds.urls[0].rsplit('/', 1)[-1]}"]
    return list(ds.urls)


def get(name: str) -> DataSet:
    """The data set called ``name`` (raises KeyError listing the known names)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def verify(name: str, path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` is the data set's verified content (for a ``.gz`` file, once
    decompressed: the shipped tiny-shakespeare)."""
    ds = get(name)
    try:
        if ds.name == "digits":
            z = read_npz(path)  # declared sizes checked before anything is allocated
            return _array_digest(z["images"], z["target"]) == ds.sha256
        raw = Path(path).read_bytes()
        if Path(path).suffix == ".gz":
            raw = gzip.decompress(raw)
        return hashlib.sha256(raw).hexdigest() == ds.sha256
    except (OSError, ValueError, KeyError, EOFError, zlib.error, zipfile.BadZipFile):  # missing, empty, truncated, not npz
        return False


def fetch(name: str, folder: str | os.PathLike[str] | None = None, force: bool = False, timeout: float = 30.0,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The path of data set ``name`` in ``folder`` (default: the cache), downloaded if missing.

    Args:
        name: a key of ``DATASETS``.
        folder: where the file goes (created if needed).
        force: download again even if a verified file is there.
        timeout: seconds one source may take in all (connecting and downloading) before the next
            is tried.
        progress: called as ``progress(bytes_so_far, total_or_None)`` while downloading.

    Raises:
        DownloadError: offline, the folder cannot be written, every source failed, or none matched
            the checksum; nothing is written then, not even the folder.
    """
    ds = get(name)
    target = Path(folder) if folder is not None else cache_dir()
    target = target / ds.filename
    if target.is_file() and not force and verify(name, target):
        return target
    if offline():
        raise DownloadError(f"{ds.filename} is not in {target.parent} and downloads are off (DLIA_OFFLINE is set)")
    # a folder that cannot hold the file fails before anything is downloaded; missing folders are
    # made only when the verified file is written, so a failed download leaves none behind
    nearest = next((p for p in target.parents if p.exists()), None)
    if nearest is not None and not nearest.is_dir():
        raise DownloadError(f"cannot write {target}: {nearest} is a file, not a folder")
    failures = []
    for url in sources(ds):
        try:
            payload = ds.finish(_download(url, timeout, progress))
        except (DownloadError, OSError, ValueError, EOFError, zlib.error, http.client.HTTPException) as e:
            failures.append(f"{url}: {' '.join(str(getattr(e, 'reason', None) or e).split())}")  # URLError: reason
            continue
        try:
            with atomic_write(target) as f:
                f.write(payload)
        except OutputError as e:  # says "cannot write PATH: why" itself
            raise DownloadError(str(e)) from None
        except OSError as e:
            raise DownloadError(f"cannot write {target}: {e.strerror or e}") from None
        return target
    raise DownloadError(f"could not download {name}: " + "; ".join(failures))


def _download(url: str, timeout: float, progress: Callable[[int, int | None], None] | None) -> bytes:
    """The body at ``url``, within ``timeout`` seconds in all; a body shorter than the announced
    Content-Length (a dropped connection) is an error, not a file."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "dlia"})
    # each socket wait is bounded too, so a silent server costs at most about 1.5 × timeout
    with urllib.request.urlopen(request, timeout=timeout / 2) as response:  # noqa: S310 - fixed https/mirror URLs
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        chunks, done = [], 0
        while True:
            chunk = response.read1(1 << 16)  # whatever has arrived: a trickle cannot outlast the deadline
            if not chunk:
                break
            done += len(chunk)
            if done > MAX_BYTES:
                raise DownloadError(f"more than {MAX_BYTES >> 20} MB: not the expected file")
            if time.monotonic() > deadline:
                raise DownloadError(f"gave up after {timeout:g} s ({done:,} bytes received)")
            chunks.append(chunk)
            if progress is not None:
                progress(done, total)
    if total is not None and done < total:
        raise DownloadError(f"the connection closed after {done:,} of {total:,} bytes")
    return b"".join(chunks)


def _array_digest(images: numpy.ndarray, target: numpy.ndarray) -> str:
    return hashlib.sha256(images.astype(numpy.uint8).tobytes() + target.astype(numpy.uint8).tobytes()).hexdigest()


def _digits_npz(raw: bytes, sha256: str) -> bytes:
    """The digits CSV (scikit-learn's gzipped copy or UCI's optdigits.tes: 64 pixel counts 0..16 and
    the label per line) as ``digits.npz`` with uint8 ``images`` (N, 8, 8) and ``target``."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:  # cut off or damaged on the way
            raise DownloadError(f"damaged gzip data ({e})") from None
    try:
        table = numpy.loadtxt(io.StringIO(raw.decode("ascii")), delimiter=",", ndmin=2)
    except (UnicodeDecodeError, ValueError) as e:
        raise DownloadError(f"not the digits table: {e}") from None
    if table.shape[1] != 65 or table.min() < 0 or table[:, :64].max() > 16 or table[:, 64].max() > 9:
        raise DownloadError(f"not the digits table: {table.shape[0]} rows of {table.shape[1]} values")
    images = table[:, :64].astype(numpy.uint8).reshape(-1, 8, 8)
    target = table[:, 64].astype(numpy.uint8)
    digest = _array_digest(images, target)
    if digest != sha256:
        raise DownloadError(f"checksum mismatch (sha256 of the arrays {digest[:16]}…, expected {sha256[:16]}…)")
    buf = io.BytesIO()
    numpy.savez_compressed(buf, images=images, target=target)
    return buf.getvalue()
