"""``dlia data``: list the lecture's public data sets, download them into the cache with checksum
verification, and say where a data file is found. The small sets shipped inside the package (the
digits, tiny-shakespeare) are listed as such and not downloaded, unless a folder is named."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlia.cli.common import check_output, path_name
from dlia.cli.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="download the lecture's data sets (checksum-verified) into a cache",
                       description="The public data sets the commands use, downloaded into ~/.cache/dlia "
                                   "(or $DLIA_CACHE_DIR) and checked against SHA-256 checksums. DLIA_DATA_MIRROR "
                                   "names a mirror to use instead of the original sources; DLIA_OFFLINE=1 "
                                   "turns downloads off.")
    cmds = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ls = cmds.add_parser("list", help="every data set, its size and where it is found")
    ls.set_defaults(run=list_sets)
    g = cmds.add_parser("get", help="download data sets (skips those already verified, and those shipped with dlia "
                                    "unless --dir is given)")
    g.add_argument("names", nargs="+", metavar="NAME", help="data set names (see 'dlia data list'), or 'all'")
    g.add_argument("--dir", type=path_name, default=None, help="download into this folder instead of the cache")
    g.add_argument("--force", action="store_true", help="download again even if a verified copy is there")
    g.set_defaults(run=get)
    w = cmds.add_parser("path", help="print where a data set's file is found (exit status 2 if nowhere)")
    w.add_argument("name", help="a data set name")
    w.set_defaults(run=path)


def _names(names: list[str]) -> list[str]:
    from dlia.data.download import DATASETS

    unknown = [n for n in names if n not in DATASETS and n != "all"]
    if unknown:
        raise UserError(f"unknown data set {unknown[0]!r}; known: {', '.join(DATASETS)}")
    return list(DATASETS) if "all" in names else list(dict.fromkeys(names))


def _shipped(name: str):
    """The copy of data set ``name`` installed with dlia, or None."""
    from dlia.data import shipped_file
    from dlia.data.download import DATASETS

    ds = DATASETS[name]
    return None if ds.shipped is None else shipped_file(ds.shipped)


def _found(name: str):
    """Where the commands find data set ``name``: its shipped copy, else the data folders, or None."""
    from dlia.data import DataNotFoundError, find_data_file
    from dlia.data.download import DATASETS

    shipped = _shipped(name)
    if shipped is not None:
        return shipped
    try:
        return find_data_file(DATASETS[name].filename)
    except DataNotFoundError:
        return None


def list_sets(args: argparse.Namespace) -> int:
    from dlia.data.download import DATASETS, cache_dir, verify

    print(f"cache: {cache_dir()}")
    for ds in DATASETS.values():
        where = _found(ds.name)
        state = ("not downloaded" if where is None else
                 ("shipped with dlia: " if where == _shipped(ds.name) else "") + str(where)
                 + ("" if verify(ds.name, where) else " (differs)"))
        print(f"  {ds.name:16s} {ds.size / 1e6:6.2f} MB  {ds.description}\n  {'':16s} {'':9s}  {state}")
    return 0


def get(args: argparse.Namespace) -> int:
    from dlia.cli.progress import Progress
    from dlia.data.download import DATASETS, DownloadError, cache_dir, fetch, verify

    check_output(args.dir or cache_dir(), "--dir" if args.dir else "the cache (DLIA_CACHE_DIR)", folder=True)
    folder = args.dir
    for name in _names(args.names):
        ds = DATASETS[name]
        shipped = _shipped(name)
        if shipped is not None and folder is None:  # the commands use the shipped copy: a download would go unused
            print(f"{name}: shipped with dlia ({shipped}), nothing to download; --dir FOLDER downloads a copy there")
            continue
        existing = Path(folder) / ds.filename if folder else _found(name)
        if existing is not None and existing.is_file() and not args.force and verify(name, existing):
            print(f"{name}: {existing} (already there, checksum verified)")
            continue
        bar: list[Progress] = []

        def progress(done: int, total: int | None, bar: list = bar, name: str = name) -> None:
            if not bar:
                bar.append(Progress(total=total, desc=f"downloading {name}", stream=sys.stderr))
            bar[0].update(done - bar[0].n)

        try:
            target = fetch(name, folder, force=args.force, progress=progress)
        except DownloadError as e:
            if bar:
                bar[0].clear()  # the error stays one line
            raise UserError(str(e)) from None
        if bar:
            bar[0].close()
        print(f"{name}: {target} ({target.stat().st_size:,} bytes, checksum verified; {ds.license})")
        found = _found(name)
        if folder is None and found is not None and found.resolve() != target.resolve():
            print(f"note: the commands find {found} first" + ("" if verify(name, found) else
                  ", which differs from the published data: remove it or pass --data " + str(target)))
    if folder is None:
        print(f"the commands find files in {cache_dir()} without --data")
    return 0


def path(args: argparse.Namespace) -> int:
    (name,) = _names([args.name])
    from dlia.data.download import verify

    where = _found(name)
    if where is None:
        raise UserError(f"{name} is not downloaded; run 'dlia data get {name}'")
    print(where)
    if not verify(name, where):
        print(f"warning: {where} differs from the published {name} data set "
              f"('dlia data get {name} --force' downloads it again)", file=sys.stderr)
    return 0
