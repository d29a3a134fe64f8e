"""Write ``tests/data/swissmetro.csv.gz``: the Swissmetro rows and columns of biogeme's latent-class example.

Usage: python benchmarks/peers/make_swissmetro.py [SWISSMETRO.dat] [--out tests/data/swissmetro.csv.gz]

SWISSMETRO.dat is the tab-separated ``swissmetro.dat`` shipped in the biogeme wheel
(``biogeme/data/data/swissmetro.dat``, 10,728 rows, 28 integer columns). Without the
argument the file is looked up in the biogeme peer environment that
``benchmarks/peers/install.py`` (``ensure_biogeme()``) creates under
``benchmarks/_peers/venv-biogeme``.

Filter (biogeme's ``swissmetro_data`` for its examples): ``PURPOSE in {1, 3}`` (commuter,
business) and ``CHOICE != 0``; 6,768 rows, 752 respondents with 9 choices each, in the
file's original row order. Columns kept: ID, PURPOSE, GA, SP, CHOICE, TRAIN_AV, SM_AV,
CAR_AV, TRAIN_TT, SM_TT, CAR_TT, TRAIN_CO, SM_CO, CAR_CO, with their original values
(the text of each field is copied unchanged: all are integers).

Standard library only, so any Python 3 runs it. The output is byte-for-byte
reproducible: CSV with ``\\n`` line ends, gzip level 9 with mtime 0 and no file name
in the gzip header.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "data" / "swissmetro.csv.gz"
COLUMNS = [
    "ID", "PURPOSE", "GA", "SP", "CHOICE",
    "TRAIN_AV", "SM_AV", "CAR_AV",
    "TRAIN_TT", "SM_TT", "CAR_TT",
    "TRAIN_CO", "SM_CO", "CAR_CO",
]  # fmt: skip
EXPECTED_ROWS = 6768
# sha256 of swissmetro.dat as shipped in biogeme 3.3.2 (checked, not required).
KNOWN_SHA256 = "27432693cf052985d79a950b4b888be3efca798fc89b0d3ffefe40608ede00f2"


def find_swissmetro() -> Path:
    pattern = str(ROOT / "benchmarks" / "_peers" / "venv-biogeme" / "lib" / "python*" / "site-packages"
                  / "biogeme" / "data" / "data" / "swissmetro.dat")  # fmt: skip
    hits = sorted(glob.glob(pattern))
    if not hits:
        raise SystemExit(
            "swissmetro.dat not found in benchmarks/_peers/venv-biogeme; install biogeme first:\n"
            "  python -c \"import sys; sys.path.insert(0, 'benchmarks/peers'); import install; "
            'print(install.ensure_biogeme())"\n'
            "or pass the path of swissmetro.dat (e.g. from `pip download biogeme --no-deps`, unzipped)."
        )
    return Path(hits[0])


def build(source: Path) -> tuple[bytes, int, int]:
    """The gzipped CSV, its number of rows and of distinct IDs."""
    lines = source.read_text().splitlines()
    header = lines[0].split("\t")
    idx = [header.index(c) for c in COLUMNS]
    i_purpose, i_choice, i_id = header.index("PURPOSE"), header.index("CHOICE"), header.index("ID")
    out = [",".join(COLUMNS)]
    ids = set()
    for line in lines[1:]:
        if not line.strip():
            continue
        f = line.split("\t")
        if len(f) != len(header):
            raise ValueError(f"row with {len(f)} fields, header has {len(header)}: {line!r}")
        if int(f[i_purpose]) in (1, 3) and int(f[i_choice]) != 0:
            vals = [f[i] for i in idx]
            for v in vals:
                int(v)  # every kept field is an integer; fail loudly otherwise
            out.append(",".join(vals))
            ids.add(f[i_id])
    text = ("\n".join(out) + "\n").encode("ascii")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(text)
    return buf.getvalue(), len(out) - 1, len(ids)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", default=None, help="path of swissmetro.dat")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    source = Path(args.source) if args.source else find_swissmetro()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != KNOWN_SHA256:
        print(f"note: {source} has sha256 {digest}, not the biogeme 3.3.2 file's {KNOWN_SHA256}", file=sys.stderr)
    data, n_rows, n_ids = build(source)
    if n_rows != EXPECTED_ROWS:
        raise SystemExit(f"filter kept {n_rows} rows, expected {EXPECTED_ROWS}")
    Path(args.out).write_bytes(data)
    print(
        f"{args.out}: {n_rows} rows, {n_ids} IDs, {len(data)} bytes, "
        f"sha256 {hashlib.sha256(data).hexdigest()} (source sha256 {digest})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
