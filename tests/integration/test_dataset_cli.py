"""Black-box tests of `recd-train synth` and `recd-train import`: the datasets
(recd-dataset/1, docs/DATASET.md) they write, read back with Python's csv
module; exit codes and error messages; MovieLens fixtures of the three
layouts written here (tiny hand-written files, malformed lines included);
and, when /work/shared/data/ml-latest-small exists, the real data checked
against an independent Python reading of the CSV files.

The program is $RECD_TRAIN_BIN (default: bin/recd-train of this tree).
"""
import csv
import json
import math
import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN_BIN = os.environ.get("RECD_TRAIN_BIN") or os.path.join(ROOT, "bin", "recd-train")
ML_SMALL = "/work/shared/data/ml-latest-small"
FILES = ["meta.json", "items.tsv", "users.tsv", "events.tsv", "truth/user_factors.tsv",
         "truth/item_factors.tsv"]
TYPES = {"rating", "click", "watch", "purchase", "impression"}

pytestmark = pytest.mark.skipif(not os.access(TRAIN_BIN, os.X_OK),
                                reason=f"{TRAIN_BIN} not built (make bin/recd-train)")


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([TRAIN_BIN, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=e)


def ok(*args, env=None):
    p = run(*args, env=env)
    assert p.returncode == 0, f"recd-train {args} -> {p.returncode}\n{p.stderr}"
    return p


def read_tsv(path):
    """(header, rows) with strict checks of the format's rules."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    assert "\r" not in text and "\0" not in text
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    header = lines[0].split("\t")
    rows = [ln.split("\t") for ln in lines[1:]]
    for r in rows:
        assert len(r) == len(header), (path, r)
    return header, rows


def load(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    ih, items = read_tsv(os.path.join(d, "items.tsv"))
    uh, users = read_tsv(os.path.join(d, "users.tsv"))
    eh, events = read_tsv(os.path.join(d, "events.tsv"))
    assert ih[0] == "id" and uh[0] == "id"
    assert eh[:5] == ["user", "item", "ts", "type", "value"]
    assert meta["format"] == "recd-dataset/1"
    assert meta["counts"]["items"] == len(items)
    assert meta["counts"]["users"] == len(users)
    assert meta["counts"]["events"] == len(events)
    item_ids = {r[0] for r in items}
    user_ids = {r[0] for r in users}
    assert len(item_ids) == len(items) and len(user_ids) == len(users)
    uidx = {r[0]: i for i, r in enumerate(users)}
    iidx = {r[0]: i for i, r in enumerate(items)}
    keys = []
    for e in events:
        assert e[0] in user_ids and e[1] in item_ids
        assert e[3] in TYPES
        assert math.isfinite(float(e[4]))
        keys.append((int(e[2]), uidx[e[0]], iidx[e[1]], e[3], float(e[4])))
    # canonical order: ts, user row, item row, type (enum order), value
    order = {"rating": 0, "click": 1, "watch": 2, "purchase": 3, "impression": 4}
    k2 = [(k[0], k[1], k[2], order[k[3]], k[4]) for k in keys]
    assert k2 == sorted(k2)
    by_type = {}
    for e in events:
        by_type[e[3]] = by_type.get(e[3], 0) + 1
    assert meta["counts"]["by_type"] == by_type
    return meta, (ih, items), (uh, users), (eh, events)


# ---- synth ---------------------------------------------------------------------------------

def test_help():
    for cmd in ("synth", "import"):
        p = ok(cmd, "--help")
        assert p.stdout.startswith(f"usage: recd-train {cmd}")
        assert "--force" in p.stdout
    p = ok("--help")
    assert "synth" in p.stdout and "import" in p.stdout


def test_synth_implicit(tmp_path):
    out = tmp_path / "ds"
    p = ok("synth", "--out", out, "--users", 200, "--items", 500, "--events", 6000, "--seed", 3,
           "--factors", 8)
    assert re.match(rf"wrote {out}: 200 users, 500 items, \d+ events \(implicit; .*CTR "
                    r"\d+\.\d%.*\) in \d+\.\d s$", p.stdout.strip()), p.stdout
    meta, (ih, items), (uh, users), (eh, events) = load(out)
    assert meta["kind"] == "implicit" and meta["truth"] is True
    assert ih == ["id", "title", "genres", "year", "tags"]
    assert uh == ["id", "age", "gender", "occupation"]
    assert eh == ["user", "item", "ts", "type", "value", "device"]
    assert 0.85 * 6000 < len(events) < 1.15 * 6000
    assert {e[5] for e in events} <= {"mobile", "desktop", "tablet", "tv"}
    assert {e[3] for e in events} == {"impression", "click", "watch", "purchase"}
    clicks = sum(e[3] == "click" for e in events)
    imps = sum(e[3] == "impression" for e in events)
    assert 0.05 <= clicks / imps <= 0.15
    for e in events:
        if e[3] == "watch":
            assert 5 <= float(e[4]) <= 14400
        else:
            assert e[4] == "0"
        assert 1767225600 <= int(e[2]) < 1767225600 + 181 * 86400
    for r in items:
        assert 1930 <= int(r[3]) <= 2020
    for r in users:
        assert 13 <= int(r[1]) <= 70 and r[2] in ("M", "F") and r[3]
    uh, uf = read_tsv(out / "truth" / "user_factors.tsv")
    th, itf = read_tsv(out / "truth" / "item_factors.tsv")
    assert uh == ["id"] + [f"f{k}" for k in range(8)]
    assert th == ["id"] + [f"f{k}" for k in range(8)] + ["bias"]
    assert [r[0] for r in uf] == [r[0] for r in users]
    assert [r[0] for r in itf] == [r[0] for r in items]


def test_synth_explicit(tmp_path):
    out = tmp_path / "ds"
    p = ok("synth", "--out", out, "--explicit", "--users", 100, "--items", 400, "--events", 3000,
           "--zipf", "0.8", "--days", 30, "--topics", 5)
    assert "(explicit; mean rating " in p.stdout
    meta, _, _, (eh, events) = load(out)
    assert meta["kind"] == "explicit"
    assert eh == ["user", "item", "ts", "type", "value"]
    assert len(events) == 3000
    for e in events:
        v = float(e[4])
        assert e[3] == "rating" and 0.5 <= v <= 5 and v * 2 == int(v * 2)
        assert int(e[2]) < 1767225600 + 30 * 86400
    assert "zipf=0.8" in meta["source"] and "days=30" in meta["source"]


def test_synth_same_seed_same_bytes(tmp_path):
    env = {"SOURCE_DATE_EPOCH": "1767225600"}
    args = ["--users", 150, "--items", 300, "--events", 3000]
    ok("synth", "--out", tmp_path / "a", *args, env=env)
    ok("synth", "--out", tmp_path / "b", *args, env=env)
    ok("synth", "--out", tmp_path / "c", *args, "--seed", 2, env=env)
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "events.tsv").read_bytes() != (tmp_path / "c" / "events.tsv").read_bytes()
    assert '"created": "2026-01-01T00:00:00Z"' in (tmp_path / "a" / "meta.json").read_text()


def test_synth_existing_out_and_force(tmp_path):
    out = tmp_path / "ds"
    small = ["--users", 50, "--items", 100, "--events", 500]
    ok("synth", "--out", out, *small)
    before = (out / "events.tsv").read_bytes()
    p = run("synth", "--out", out, *small, "--seed", 9)
    assert p.returncode == 1
    assert f"{out} already exists (use --force to replace it)" in p.stderr
    assert (out / "events.tsv").read_bytes() == before
    ok("synth", "--out", out, *small, "--seed", 9, "--force")
    assert (out / "events.tsv").read_bytes() != before
    assert not [x for x in os.listdir(tmp_path) if x != "ds"]  # no temporary left behind
    # --force never replaces a directory that is not a dataset
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep")
    p = run("synth", "--out", other, *small, "--force")
    assert p.returncode == 1
    assert "not a dataset" in p.stderr
    assert (other / "precious.txt").read_text() == "keep"


@pytest.mark.parametrize("args,msg", [
    ([], "--out DIR is required"),
    (["--out", "X", "--users", "0"], "--users: '0' is not an integer in 1..10000000"),
    (["--out", "X", "--events", "many"], "--events: 'many' is not an integer"),
    (["--out", "X", "--zipf", "abc"], "--zipf: 'abc' is not a number in 0..5"),
    (["--out", "X", "--zipf", "9"], "--zipf: '9' is not a number in 0..5"),
    (["--out", "X", "--factors", "1"], "--factors: '1' is not an integer in 2..256"),
    (["--out", "X", "--days", "0"], "--days"),
    (["--out", "X", "extra"], "unexpected argument 'extra'"),
    (["--out", "X", "--bogus"], "usage: recd-train synth"),
])
def test_synth_usage_errors(tmp_path, args, msg):
    args = [str(tmp_path / "x") if a == "X" else a for a in args]
    p = run("synth", *args)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr
    assert not (tmp_path / "x").exists()


# ---- import: fixtures ----------------------------------------------------------------------

def write(d, name, data):
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def fixture_100k(d):
    write(d, "u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\r\n1\t20\t4\n"
                       "2\t20\t1\t881250951\n1\t30\t9\t881250952\n3\t30\t2\t881250953")
    write(d, "u.item",
          b"10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
          b"20|Mis\xe9rables, Les (1995)|01-Jan-1995||u|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n"
          b"30|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
    write(d, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|x|F|writer|1\n")
    return {
        "users": 3, "items": 3, "events": 4, "skipped": 3,
        "stderr": ["u.data:3: expected 4 tab-separated fields", "u.data:5: rating 9 out of range",
                   "u.user:3: age 'x' is not a number"],
        "items_check": {"10": ("Toy Story", "Animation|Children|Comedy", "1995"),
                        "20": ("Misérables, Les", "Drama|War", "1995"),
                        "30": ("unknown", "", "")},
        "user_check": {"1": ["24", "M", "technician"], "3": ["", "", ""]},
        "strict_first": "u.user:3: age 'x' is not a number",
    }


def fixture_1m(d):
    write(d, "ratings.dat", "1::1193::5::978300760\r\n1::661::3::978302109\r\n"
                            "2::1193::4::978298413\r\n2::661\r\n2::x::3::978298413\r\n")
    write(d, "movies.dat", b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                           b"661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                           b"7::Caf\xe9 (1995)::Comedy\n")
    write(d, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n5::M::25::99::1\n")
    return {
        "users": 2, "items": 3, "events": 3, "skipped": 3,
        "stderr": ["ratings.dat:4: expected 4 '::'-separated fields",
                   "ratings.dat:5: movie id 'x' is not a number",
                   "users.dat:3: occupation '99' is not a code 0..20"],
        "items_check": {"661": ("James and the Giant Peach", "Animation|Children|Musical", "1996"),
                        "7": ("Café", "Comedy", "1995")},
        "user_check": {"1": ["1", "F", "K-12 student"], "2": ["56", "M", "self-employed"]},
        "strict_first": "users.dat:3: occupation '99'",
    }


def fixture_latest(d):
    write(d, "ratings.csv", "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n"
                            "1,2,0.5,964981247\r\n2,1,0,964982224\r\n2,2,3.5,964983815\r\n"
                            "3,1,4.0")
    write(d, "movies.csv", "movieId,title,genres\n"
                           "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
                           "2,\"American President, The (1995)\",Comedy|Drama|Romance\n"
                           "3,\"11'09\"\"01 - September 11 (2002)\",Drama\n"
                           "4,Babylon 5,(no genres listed)\n")
    write(d, "tags.csv", "userId,movieId,tag,timestamp\n2,1,Pixar,1\n3,1, pixar ,2\n"
                         "3,1,\"fun, for|kids\",3\n2,2,politics\n")
    return {
        "users": 2, "items": 4, "events": 3, "skipped": 3,
        "stderr": ["ratings.csv:4: rating 0 out of range", "ratings.csv:6: expected 4 fields",
                   "tags.csv:5: expected 4 fields"],
        "items_check": {"1": ("Toy Story", "Adventure|Animation|Children|Comedy|Fantasy", "1995"),
                        "2": ("American President, The", "Comedy|Drama|Romance", "1995"),
                        "3": ("11'09\"01 - September 11", "Drama", "2002"),
                        "4": ("Babylon 5", "", "")},
        "tags": {"1": "pixar|fun, forkids", "2": ""},
        "user_check": {},
        "strict_first": "ratings.csv:4: rating 0 out of range",
    }


FIXTURES = {"ml-100k": fixture_100k, "ml-1m": fixture_1m, "ml-latest": fixture_latest}


@pytest.mark.parametrize("layout", sorted(FIXTURES))
@pytest.mark.parametrize("explicit_layout", [False, True])
def test_import_fixture(tmp_path, layout, explicit_layout):
    src = tmp_path / "src"
    src.mkdir()
    want = FIXTURES[layout](src)
    out = tmp_path / "ds"
    extra = ["--layout", layout] if explicit_layout else []
    p = ok("import", "--from", src, "--out", out, *extra)
    line = p.stdout.strip()
    assert f"({layout})" in line
    assert f"{want['users']} users, {want['items']} items, {want['events']} ratings" in line
    assert f"{want['skipped']} malformed lines skipped" in line
    for s in want["stderr"]:
        assert f"{src}/{s}" in p.stderr, p.stderr
    meta, (ih, items), (uh, users), (eh, events) = load(out)
    assert meta["kind"] == "explicit" and meta["truth"] is False
    assert not (out / "truth").exists()
    by_id = {r[0]: r for r in items}
    for iid, (title, genres, year) in want["items_check"].items():
        assert by_id[iid][1:4] == [title, genres, year], by_id[iid]
    for iid, tags in want.get("tags", {}).items():
        assert by_id[iid][4] == tags
    if layout == "ml-latest":
        assert uh == ["id"]
    else:
        assert uh == ["id", "age", "gender", "occupation"]
        ub = {r[0]: r for r in users}
        for uid, cols in want["user_check"].items():
            assert ub[uid][1:] == cols
    assert all(e[3] == "rating" for e in events)


@pytest.mark.parametrize("layout", sorted(FIXTURES))
def test_import_strict(tmp_path, layout):
    src = tmp_path / "src"
    src.mkdir()
    want = FIXTURES[layout](src)
    out = tmp_path / "ds"
    p = run("import", "--from", src, "--out", out, "--strict")
    assert p.returncode == 1
    # files are read in the order items, users, ratings, tags
    first = want["strict_first"]
    assert f"recd-train import: {src}/{first}" in p.stderr, p.stderr
    assert not out.exists()


def test_import_errors(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "ds"
    # bad usage: exit 2
    for args, msg in [([], "--from SRC_DIR and --out DIR are required"),
                      (["--from", src], "are required"),
                      (["--from", src, "--out", out, "--layout", "ml-20m"],
                       "--layout: 'ml-20m' is not auto, ml-100k, ml-1m or ml-latest"),
                      (["--from", src, "--out", out, "--nope"], "usage: recd-train import"),
                      (["--from", src, "--out", out, "x"], "unexpected argument 'x'")]:
        p = run("import", *args)
        assert p.returncode == 2, (args, p.stderr)
        assert msg in p.stderr
    # failures: exit 1
    p = run("import", "--from", tmp_path / "missing", "--out", out)
    assert p.returncode == 1 and "No such file or directory" in p.stderr
    p = run("import", "--from", src, "--out", out)
    assert p.returncode == 1 and "no MovieLens layout found" in p.stderr
    fixture_latest(src)
    p = run("import", "--from", src, "--out", out, "--layout", "ml-1m")
    assert p.returncode == 1 and f"{src}/movies.dat: No such file" in p.stderr
    write(src, "ratings.csv", "user,movie,rating,time\n1,1,4,1\n")
    p = run("import", "--from", src, "--out", out)
    assert p.returncode == 1
    assert f"{src}/ratings.csv:1: header is 'user,movie,rating,time'" in p.stderr
    # an existing output: refused, then replaced with --force
    write(src, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n")
    ok("import", "--from", src, "--out", out)
    p = run("import", "--from", src, "--out", out)
    assert p.returncode == 1 and "already exists (use --force" in p.stderr
    write(src, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n2,2,3,2\n")
    ok("import", "--from", src, "--out", out, "--force")
    assert len(read_tsv(out / "events.tsv")[1]) == 2


def test_import_empty_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write(src, "ratings.csv", "")
    write(src, "movies.csv", "movieId,title,genres\n")
    out = tmp_path / "ds"
    p = ok("import", "--from", src, "--out", out, "--strict")
    assert "0 users, 0 items, 0 ratings" in p.stdout
    meta, items, users, events = load(out)
    assert meta["counts"] == {"users": 0, "items": 0, "events": 0, "by_type": {}}


# ---- import: the real ml-latest-small --------------------------------------------------------

@pytest.mark.skipif(not os.path.isdir(ML_SMALL),
                    reason=f"{ML_SMALL} is absent (MovieLens ml-latest-small not available)")
def test_import_ml_latest_small(tmp_path):
    out = tmp_path / "ml"
    p = ok("import", "--from", ML_SMALL, "--out", out, "--strict")
    assert "610 users, 9742 items, 100836 ratings" in p.stdout
    assert "100836 rating lines read, 0 malformed lines skipped" in p.stdout
    assert p.stderr == ""
    meta, (ih, items), (uh, users), (eh, events) = load(out)
    assert (len(users), len(items), len(events)) == (610, 9742, 100836)
    by_id = {r[0]: r for r in items}
    assert by_id["1"][1:4] == ["Toy Story", "Adventure|Animation|Children|Comedy|Fantasy", "1995"]
    assert by_id["2"][1] == "Jumanji"
    # an independent reading of the CSV files with Python's csv module
    with open(os.path.join(ML_SMALL, "movies.csv"), newline="", encoding="utf-8") as f:
        movies = list(csv.DictReader(f))
    year_re = re.compile(r"^(.*?)\s*\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?\s*)?\)$")
    for m in movies:
        t = m["title"].strip()
        mt = year_re.match(t)
        title, year = (mt.group(1), mt.group(2)) if mt else (t, "")
        genres = "" if m["genres"] == "(no genres listed)" else m["genres"]
        assert by_id[m["movieId"]][1:4] == [title, genres, year], m
    tags = {}
    with open(os.path.join(ML_SMALL, "tags.csv"), newline="", encoding="utf-8") as f:
        for t in csv.DictReader(f):
            tag = t["tag"].replace("|", "").replace("\t", "")
            tag = "".join(c.lower() if "A" <= c <= "Z" else c for c in tag).strip()
            lst = tags.setdefault(t["movieId"], [])
            if tag and tag not in lst:
                lst.append(tag)
    for iid, row in by_id.items():
        assert row[4] == "|".join(tags.get(iid, [])), iid
    with open(os.path.join(ML_SMALL, "ratings.csv"), newline="") as f:
        ratings = list(csv.DictReader(f))
    want = sorted((int(r["timestamp"]), r["userId"], r["movieId"], float(r["rating"]))
                  for r in ratings)
    got = sorted((int(e[2]), e[0], e[1], float(e[4])) for e in events)
    assert got == want
    first = next(e for e in events if e[0] == "1" and e[1] == "1")
    assert first[2:] == ["964982703", "rating", "4"]
