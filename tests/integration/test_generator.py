"""Black-box tests of `recd-train synth-bundle`: the bundle it writes is
checked independently with numpy and hashlib against the recd-bundle/1
format (models/FORMAT.md), and, when the shared reference helpers exist,
with their loaders too.

The program is $RECD_TRAIN_BIN (default: bin/recd-train of this tree).
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN_BIN = os.environ.get("RECD_TRAIN_BIN") or os.path.join(ROOT, "bin", "recd-train")
RECBUNDLE_DIR = "/work/shared/tools/bundle"

GENRES = {"Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"}
FIELDS = ["user_id", "age", "gender", "occupation", "item_id", "genres", "year", "device", "hour"]
USER_FIELDS = ["user_id", "age", "gender", "occupation"]
CROSSES = [("age", "genres"), ("gender", "genres"), ("occupation", "genres"),
           ("device", "genres"), ("age", "year")]
N_ITEMS = 1500

pytestmark = pytest.mark.skipif(not os.access(TRAIN_BIN, os.X_OK),
                                reason=f"{TRAIN_BIN} not built (make bin/recd-train)")


def run_train(*args, check=True):
    p = subprocess.run([TRAIN_BIN, *args], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"recd-train {' '.join(args)} -> {p.returncode}\n{p.stderr}")
    return p


def synth(out, *extra, name="default", version=1):
    run_train("synth-bundle", "--out", str(out), "--name", name, "--version", str(version),
              "--items", str(N_ITEMS), "--dim", "32", "--embed", "16", "--hidden", "64",
              *extra)
    return os.path.join(str(out), name, str(version))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_tensors(bundle, manifest):
    """Independent tensor reader: bounds, alignment, overlap, padding."""
    path = os.path.join(bundle, "tensors.bin")
    raw = open(path, "rb").read()
    assert manifest["tensor_alignment"] == 64
    out, end = {}, 0
    for t in manifest["tensors"]:
        name, shape, off = t["name"], t["shape"], t["offset"]
        assert name not in out, f"{name} listed twice"
        assert off % 64 == 0, f"{name}: offset {off} not 64-aligned"
        assert off >= end, f"{name} overlaps the previous tensor"
        assert off - end < 64, f"{name}: gap of {off - end} bytes"
        assert raw[end:off] == b"\0" * (off - end), f"padding before {name} is not zero"
        assert len(shape) in (1, 2) and all(isinstance(s, int) and s > 0 for s in shape)
        n = int(np.prod(shape))
        assert off + 4 * n <= len(raw), f"{name} runs past the end of tensors.bin"
        a = np.frombuffer(raw, dtype="<f4", count=n, offset=off).reshape(shape)
        assert np.isfinite(a).all(), f"{name} has NaN/Inf"
        out[name] = a
        end = off + 4 * n
    assert end == len(raw), "tensors.bin has trailing bytes"
    return out


def check_bundle(bundle, ranker, factory, index_file):
    manifest = json.load(open(os.path.join(bundle, "manifest.json")))
    m = manifest
    assert m["format"] == "recd-bundle/1"
    assert m["name"] == "default" and m["version"] == 1
    assert m["training"]["source"] == "synthetic: recd-train synth-bundle"
    assert m["training"]["seed"] == 1 and m["training"]["metrics"] == {}
    assert m["n_items"] == N_ITEMS

    # files: exactly the directory minus manifest.json, checksums and sizes
    listed = set(m["files"])
    present = set(os.listdir(bundle)) - {"manifest.json"}
    assert listed == present
    want = {"tensors.bin", "items.tsv"} | ({"index.faiss"} if index_file else set())
    assert listed == want
    for fname, info in m["files"].items():
        path = os.path.join(bundle, fname)
        assert info["bytes"] == os.path.getsize(path), fname
        assert info["sha256"] == sha256(path), fname

    # feature schema
    feats = m["features"]
    assert feats["hash"] == "fnv1a64" and feats["separator"] == "\x1f" and feats["missing"] == ""
    by = {f["name"]: f for f in feats["fields"]}
    assert [f["name"] for f in feats["fields"]] == FIELDS
    assert by["item_id"]["column"] == "id" and by["genres"]["multi_valued"] is True
    assert by["age"]["boundaries"] == [18, 25, 35, 45, 50, 56]
    assert by["hour"]["boundaries"] == [6, 9, 12, 14, 17, 20, 23]
    for f in feats["fields"]:
        assert f["source"] in ("user", "item", "context")
        assert f["type"] in ("categorical", "bucketized")
        assert (f["type"] == "bucketized") == ("boundaries" in f)

    t = read_tensors(bundle, m)
    N, c = N_ITEMS, m["candidate"]
    D, E = c["dim"], c["embed_dim"]
    assert (D, E) == (32, 16)
    assert t["cand.item_emb"].shape == (N, D)
    assert t["cand.hist_emb"].shape == (N, E)
    assert c["input"] == ["history"] + USER_FIELDS
    for f in c["fields"]:
        assert t[f["tensor"]].shape == (by[f["name"]]["buckets"], E)
    dims = [E * (1 + len(c["fields"]))]
    for i, layer in enumerate(c["tower"]):
        assert layer["w"] == f"cand.tower.{i}.w" and layer["activation"] == "relu"
        assert layer["in"] == dims[-1]
        assert t[layer["w"]].shape == (layer["in"], layer["out"])
        assert t[layer["b"]].shape == (layer["out"],)
        dims.append(layer["out"])
    assert dims == [5 * E, 64, D]

    r = m["ranker"]
    assert r["type"] == ranker and r["output"] == "sigmoid"
    K = r["embed_dim"]
    assert [f["name"] for f in r["fields"]] == FIELDS
    for f in r["fields"]:
        b = by[f["name"]]["buckets"]
        assert t[f["emb"]].shape == (b, K)
        assert t[f["lin"]].shape == (b,)
    assert t[r["bias"]].shape == (1,)
    prev = K * len(FIELDS)
    for layer in r["mlp"]:
        assert layer["in"] == prev
        assert t[layer["w"]].shape == (layer["in"], layer["out"])
        assert t[layer["b"]].shape == (layer["out"],)
        prev = layer["out"]
    assert r["out"]["in"] == prev
    assert t[r["out"]["w"]].shape == (prev, 1) and t[r["out"]["b"]].shape == (1,)
    if ranker == "wide_deep":
        assert [tuple(x["fields"]) for x in r["crosses"]] == CROSSES
        for x in r["crosses"]:
            assert x["name"] == "x".join(x["fields"])
            assert x["tensor"] == f"rank.wide.{x['name']}"
            assert t[x["tensor"]].shape == (x["buckets"],)
    else:
        assert "crosses" not in r
        assert not [n for n in t if n.startswith("rank.wide.")]

    # every tensor the manifest uses is in the table, and nothing else
    used = {"cand.item_emb", "cand.hist_emb", r["bias"], r["out"]["w"], r["out"]["b"]}
    used |= {f["tensor"] for f in c["fields"]}
    used |= {x for layer in c["tower"] + r["mlp"] for x in (layer["w"], layer["b"])}
    used |= {x for f in r["fields"] for x in (f["emb"], f["lin"])}
    used |= {x["tensor"] for x in r.get("crosses", [])}
    assert used == set(t)

    # ann section
    a = m["ann"]
    assert a["library"] == "faiss" and a["metric"] == "inner_product"
    assert a["vectors"] == "cand.item_emb" and a["dim"] == D and a["factory"] == factory
    if factory.startswith("IVF"):
        assert a["nlist"] == int(factory[3:].split(",")[0]) and a["nprobe"] == 8
        assert a["kmeans_seed"] == 1
    if factory.startswith("HNSW"):
        assert a["M"] == int(factory[4:]) and a["efSearch"] == 40
    assert ("file" in a) == index_file

    # items.tsv
    lines = open(os.path.join(bundle, "items.tsv"), encoding="utf-8").read().split("\n")
    assert lines[0] == "id\tgenres\tyear\tpopularity" and lines[-1] == ""
    rows = [ln.split("\t") for ln in lines[1:-1]]
    assert len(rows) == N
    ids = [row[0] for row in rows]
    assert ids == [f"i{i}" for i in range(N)] and len(set(ids)) == N
    for row in rows:
        assert len(row) == 4
        g = row[1].split("|")
        assert 1 <= len(g) <= 3 and len(set(g)) == len(g) and set(g) <= GENRES
        assert 1930 <= int(row[2]) <= 2020
        assert int(row[3]) >= 1
    pop = sorted((int(row[3]) for row in rows), reverse=True)
    assert pop[0] == 1000000 and pop[0] > 10 * pop[N // 2]  # Zipf-like

    if index_file:
        faiss = pytest.importorskip("faiss")
        ix = faiss.read_index(os.path.join(bundle, "index.faiss"))
        assert ix.ntotal == N and ix.d == D
        assert ix.metric_type == faiss.METRIC_INNER_PRODUCT
        if factory.startswith("IVF"):
            assert faiss.extract_index_ivf(ix).nlist == a["nlist"]
    return m


def check_with_recbundle(bundle):
    if not os.path.exists(os.path.join(RECBUNDLE_DIR, "recbundle.py")):
        pytest.skip(f"{RECBUNDLE_DIR}/recbundle.py not present: reference helpers not checked")
    sys.path.insert(0, RECBUNDLE_DIR)
    try:
        import recbundle
    finally:
        sys.path.remove(RECBUNDLE_DIR)
    m = recbundle.load_manifest(bundle)
    recbundle.verify_checksums(bundle, m)
    tensors = recbundle.map_tensors(bundle, m)
    header, rows = recbundle.read_items(bundle)
    assert len(tensors) == len(m["tensors"])
    assert header == ["id", "genres", "year", "popularity"] and len(rows) == m["n_items"]
    by = {f["name"]: f for f in m["features"]["fields"]}
    for row in rows[:50]:
        recbundle.tsv_texts(by["genres"], row[1])
        recbundle.tsv_texts(by["year"], row[2])


CASES = [
    ("deepfm", "Flat"), ("wide_deep", "Flat"),
    ("deepfm", "IVF16,Flat"), ("wide_deep", "IVF16,Flat"),
    ("deepfm", "HNSW16"), ("wide_deep", "HNSW16"),
]


@pytest.mark.parametrize("ranker,factory", CASES)
@pytest.mark.parametrize("index_file", [False, True], ids=["no-index-file", "index-file"])
def test_synth_bundle(tmp_path, ranker, factory, index_file):
    extra = ["--ranker", ranker, "--index", factory, "--nprobe", "8", "--ef-search", "40"]
    if not index_file:
        extra.append("--no-index-file")
    bundle = synth(tmp_path, *extra)
    assert not [n for n in os.listdir(os.path.dirname(bundle)) if n.startswith(".tmp-")]
    check_bundle(bundle, ranker, factory, index_file)
    check_with_recbundle(bundle)


def test_same_seed_same_bytes(tmp_path):
    a = synth(tmp_path, "--seed", "1", "--no-index-file", name="a")
    b = synth(tmp_path, "--seed", "1", "--no-index-file", name="b")
    c = synth(tmp_path, "--seed", "2", "--no-index-file", name="c")
    for f in ("tensors.bin", "items.tsv"):
        assert sha256(os.path.join(a, f)) == sha256(os.path.join(b, f))
        assert sha256(os.path.join(a, f)) != sha256(os.path.join(c, f))


def test_cli_errors(tmp_path):
    assert run_train(check=False).returncode == 2
    assert run_train("no-such-command", check=False).returncode == 2
    p = run_train("--help")
    assert "synth-bundle" in p.stdout
    assert run_train("--version").stdout.startswith("recd-train ")
    assert "--no-index-file" in run_train("synth-bundle", "--help").stdout
    for bad in (["synth-bundle"],  # no --out
                ["synth-bundle", "--out", str(tmp_path), "--items", "0"],
                ["synth-bundle", "--out", str(tmp_path), "--items", "ten"],
                ["synth-bundle", "--out", str(tmp_path), "--ranker", "xdeepfm"],
                ["synth-bundle", "--out", str(tmp_path), "--index", "IVF,Flat"],
                ["synth-bundle", "--out", str(tmp_path), "--index", "PQ16"],
                ["synth-bundle", "--out", str(tmp_path), "--items", "10", "--index", "IVF64,Flat"],
                ["synth-bundle", "--out", str(tmp_path), "--name", "../x"],
                ["synth-bundle", "--out", str(tmp_path), "--bogus"]):
        p = run_train(*bad, check=False)
        assert p.returncode == 2, (bad, p.returncode, p.stderr)
        assert p.stderr.strip(), bad
    assert not os.path.exists(os.path.join(str(tmp_path), "x"))
    # an existing version is refused and left untouched: failure, exit 1
    bundle = synth(tmp_path, "--no-index-file")
    before = sha256(os.path.join(bundle, "manifest.json"))
    p = run_train("synth-bundle", "--out", str(tmp_path), "--items", "10", "--no-index-file",
                  check=False)
    assert p.returncode == 1 and "exists" in p.stderr
    assert sha256(os.path.join(bundle, "manifest.json")) == before
    # a models directory that cannot be created: failure, exit 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run_train("synth-bundle", "--out", str(blocker / "models"), "--items", "10",
                  "--no-index-file", check=False)
    assert p.returncode == 1 and str(blocker) in p.stderr
