"""Model bundles for the integration tests, and an independent reference.

make_bundle() writes a bundle with the project's generator, bin/recd-train
(`synth-bundle`); while that program does not exist it falls back to the
shared reference writer mkbundle.py and warns, so the tests keep running.

Reference is a second implementation of the serving formulas of
../shared/BUNDLE.md written here from the specification with numpy only
(FNV-1a-64 feature hashing, the YouTube-DNN user tower, exact inner-product
top-k, the popularity order). It never imports or calls project code; the
tests compare recd's answers against it.
"""

import bisect
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import RECD_BIN, ROOT, SANITIZED

MKBUNDLE = os.path.normpath(os.path.join(ROOT, "..", "shared", "tools", "bundle", "mkbundle.py"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def recd_train_path():
    """$RECD_TRAIN, else recd-train next to the daemon under test, else the
    tree's bin/recd-train; None when there is none (a $RECD_TRAIN that is
    not an executable counts as none)."""
    env = os.environ.get("RECD_TRAIN")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    for cand in (os.path.join(os.path.dirname(RECD_BIN), "recd-train"),
                 os.path.join(ROOT, "bin", "recd-train")):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def make_bundle(models_dir, name="default", version=1, items=5000, dim=64, embed=32,
                seed=1, ranker="deepfm", index=None, nprobe=None, ef_search=None,
                no_index_file=False, hidden=None, rank_hidden=None, rank_embed=None,
                content=None, timeout=600):
    """Write <models_dir>/<name>/<version>/ and return that path.

    index=None leaves the index type to the generator's default; hidden is
    the candidate tower, rank_hidden / rank_embed the ranker's MLP sizes
    ("64,32") and field embedding size. content=True (defaults) or a dict of
    add_content() options gives the bundle a content model; None leaves the
    generator's bundle as it is."""
    out = os.path.join(str(models_dir), name, str(version))
    train = recd_train_path()
    if train:
        cmd = [train, "synth-bundle", "--out", str(models_dir), "--name", name,
               "--version", str(version), "--items", str(items), "--dim", str(dim),
               "--embed", str(embed), "--seed", str(seed), "--ranker", ranker]
        if hidden is not None:
            cmd += ["--hidden", str(hidden)]
        if rank_hidden is not None:
            cmd += ["--rank-hidden", str(rank_hidden)]
        if rank_embed is not None:
            cmd += ["--rank-embed", str(rank_embed)]
    else:
        warnings.warn("bin/recd-train not found: generating bundles with mkbundle.py "
                      "(the tests must use the project's own generator once it exists)")
        print("WARNING: bin/recd-train missing; falling back to %s" % MKBUNDLE)
        if not os.path.exists(MKBUNDLE):
            pytest.skip("neither bin/recd-train nor %s exists" % MKBUNDLE)
        cmd = [PYTHON, MKBUNDLE, "--out", out, "--name", name, "--version", str(version),
               "--items", str(items), "--dim", str(dim), "--cand-embed", str(embed),
               "--seed", str(seed), "--ranker", ranker]
        if hidden is not None:
            cmd += ["--tower", str(hidden)]
        if rank_hidden is not None:
            cmd += ["--hidden", str(rank_hidden)]
        if rank_embed is not None:
            cmd += ["--embed", str(rank_embed)]
    if index is not None:
        cmd += ["--index", index]
    if nprobe is not None:
        cmd += ["--nprobe", str(nprobe)]
    if ef_search is not None:
        cmd += ["--ef-search", str(ef_search)]
    if no_index_file:
        cmd += ["--no-index-file"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    assert p.returncode == 0, "bundle generation failed (%s):\n%s%s" % (
        " ".join(cmd), p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    assert os.path.isfile(os.path.join(out, "manifest.json")), "no manifest in %s" % out
    if content:
        add_content(out, **(content if isinstance(content, dict) else {}))
    return out


# --------------------------------------------------------------------------
# content models (models/FORMAT.md "content")
# --------------------------------------------------------------------------

CONTENT_WORDS = ["w%d" % i for i in range(300)]
CONTENT_TAGS = ["t%d" % i for i in range(40)]


def _file_entry(path):
    import hashlib
    with open(path, "rb") as f:
        data = f.read()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def add_content(bundle_dir, fields=("genres", "year", "title_words", "tags"), embed_dim=8,
                hidden=(48,), activations=None, seed=11, scale=1.0, word_buckets=1000,
                tag_buckets=128, edit=None):
    """Give a written bundle a content model, in place (test bundles only:
    a published bundle is otherwise immutable).

    Adds two multi-valued categorical item fields to the schema and to
    items.tsv, "title_words" (1-4 of CONTENT_WORDS per item, some items
    none) and "tags" (0-3 of CONTENT_TAGS), used by no other section; then
    random content.emb.<f> tables for `fields` and an MLP with `hidden`
    layer sizes whose last layer gives candidate.dim. activations: one per
    layer (default relu on hidden layers, linear on the last). scale
    multiplies every content weight (huge values make the forward pass
    overflow while every stored number stays finite). edit(content) may
    change the manifest section before it is written (for broken bundles).
    Tensors are appended to tensors.bin at 64-byte offsets and the files
    table is re-sealed."""
    rng = np.random.default_rng(seed)
    mp = os.path.join(bundle_dir, "manifest.json")
    with open(mp) as f:
        m = json.load(f)
    schema = m["features"]["fields"]
    names = {f["name"] for f in schema}
    # items.tsv: two more columns
    ip = os.path.join(bundle_dir, "items.tsv")
    with open(ip, encoding="utf-8") as f:
        lines = [ln for ln in f.read().split("\n") if ln != ""]
    header = lines[0].split("\t")
    new_cols = [c for c in ("title_words", "tags") if c not in header]
    if new_cols:
        out = ["\t".join(header + new_cols)]
        for ln in lines[1:]:
            cells = []
            for c in new_cols:
                vocab, most = (CONTENT_WORDS, 4) if c == "title_words" else (CONTENT_TAGS, 3)
                k = int(rng.integers(0, most + 1))
                cells.append("|".join(rng.choice(vocab, size=k, replace=False)))
            out.append(ln + "\t" + "\t".join(cells))
        with open(ip, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
    if "title_words" not in names:
        schema.append({"name": "title_words", "source": "item", "type": "categorical",
                       "column": "title_words", "multi_valued": True, "buckets": word_buckets})
    if "tags" not in names:
        schema.append({"name": "tags", "source": "item", "type": "categorical",
                       "column": "tags", "multi_valued": True, "buckets": tag_buckets})
    buckets = {f["name"]: f["buckets"] for f in schema}
    dim = m["candidate"]["dim"]
    widths = [embed_dim * len(fields)] + list(hidden) + [dim]
    nl = len(widths) - 1
    if activations is None:
        activations = ["relu"] * (nl - 1) + ["linear"]
    tensors = []
    for name in fields:
        tensors.append(("content.emb.%s" % name,
                        rng.normal(0.0, 1.0, (buckets[name], embed_dim)) * scale))
    layers = []
    for i in range(nl):
        fan_in = widths[i]
        tensors.append(("content.%d.w" % i,
                        rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, widths[i + 1])) * scale))
        tensors.append(("content.%d.b" % i, rng.normal(0.0, 0.1, widths[i + 1]) * scale))
        layers.append({"w": "content.%d.w" % i, "b": "content.%d.b" % i, "in": widths[i],
                       "out": widths[i + 1], "activation": activations[i]})
    # append the tensors
    tp = os.path.join(bundle_dir, "tensors.bin")
    with open(tp, "ab") as f:
        pos = f.tell()
        for name, a in tensors:
            a = np.ascontiguousarray(a, dtype="<f4")
            assert np.isfinite(a).all(), name
            off = -(-pos // 64) * 64
            f.write(b"\0" * (off - pos))
            f.write(a.tobytes())
            pos = off + a.nbytes
            m["tensors"].append({"name": name, "shape": list(a.shape), "offset": off})
    section = {"type": "mlp", "embed_dim": embed_dim,
               "fields": [{"name": n, "tensor": "content.emb.%s" % n} for n in fields],
               "layers": layers, "output": m["candidate"]["item_embedding"]}
    if edit is not None:
        section = edit(section)
    if section is not None:
        m["content"] = section
    for fname in m["files"]:
        m["files"][fname] = _file_entry(os.path.join(bundle_dir, fname))
    with open(mp, "w") as f:
        json.dump(m, f, indent=1)
    return bundle_dir


@pytest.fixture
def bundle_maker(tmp_path):
    """make_bundle bound to a fresh models directory under tmp_path."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)

    def mk(**opts):
        return make_bundle(models, **opts)
    mk.models_dir = str(models)
    return mk


# --------------------------------------------------------------------------
# the reference
# --------------------------------------------------------------------------

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
MASK64 = (1 << 64) - 1


def fnv1a64(data):
    h = FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & MASK64
    return h


class BadValue(Exception):
    """A request value the spec says is a 400."""


class Reference:
    """Bundle tensors via np.fromfile plus the serving formulas."""

    def __init__(self, bundle_dir):
        self.dir = bundle_dir
        with open(os.path.join(bundle_dir, "manifest.json")) as f:
            self.m = json.load(f)
        m = self.m
        self.n = m["n_items"]
        self.tensors = {}
        path = os.path.join(bundle_dir, "tensors.bin")
        for t in m["tensors"]:
            count = int(np.prod(t["shape"]))
            arr = np.fromfile(path, dtype="<f4", count=count, offset=t["offset"])
            assert arr.size == count, t["name"]
            self.tensors[t["name"]] = arr.reshape(t["shape"])
        self.fields = {f["name"]: f for f in m["features"]["fields"]}
        cand = m["candidate"]
        self.cand = cand
        self.max_len = cand["history"].get("max_len", 50)
        self.item_emb = self.tensors[cand["item_embedding"]].astype(np.float64)
        self.hist_emb = self.tensors[cand["history"]["tensor"]].astype(np.float64)
        self.cand_tables = {f["name"]: self.tensors[f["tensor"]].astype(np.float64)
                            for f in cand["fields"]}
        self.tower = [(self.tensors[l["w"]].astype(np.float64),
                       self.tensors[l["b"]].astype(np.float64),
                       l.get("activation", "relu")) for l in cand["tower"]]
        # items.tsv
        with open(os.path.join(bundle_dir, "items.tsv"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        header = lines[0].split("\t")
        rows = [ln.split("\t") for ln in lines[1:] if ln != ""]
        assert len(rows) == self.n
        self.columns = header
        self.rows = rows
        self.ids = [r[0] for r in rows]
        self.index_of = {iid: i for i, iid in enumerate(self.ids)}
        pc = header.index("popularity")
        self.popularity = np.array([float(r[pc]) for r in rows])
        # popularity desc, ties by index
        self.by_pop = sorted(range(self.n), key=lambda i: (-self.popularity[i], i))

    # -- hashing -------------------------------------------------------------
    def text(self, field, v):
        f = self.fields[field]
        if v is None:
            return ""
        if f["type"] == "bucketized":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise BadValue(field)
            return str(bisect.bisect_right(f["boundaries"], v))
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            raise BadValue(field)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            if v != int(v):
                raise BadValue(field)
            return str(int(v))
        raise BadValue(field)

    def bucket(self, field, text, buckets=None):
        if buckets is None:
            buckets = self.fields[field]["buckets"]
        return fnv1a64((field + "\x1f" + text).encode("utf-8")) % buckets

    def field_buckets(self, field, v):
        f = self.fields[field]
        if isinstance(v, list):
            assert f.get("multi_valued")
            vals = v if v else [None]
        else:
            vals = [v]
        return [self.bucket(field, self.text(field, x)) for x in vals]

    # -- the user tower ------------------------------------------------------
    def known_history(self, history):
        return [self.index_of[h] for h in history if h in self.index_of]

    def user_vector(self, user_id, history, features=None, context=None):
        features = features or {}
        context = context or {}
        e = self.cand["embed_dim"]
        parts = []
        known = self.known_history(history)[-self.max_len:]
        for name in self.cand["input"]:
            if name == "history":
                if known:
                    parts.append(self.hist_emb[known].mean(axis=0))
                else:
                    parts.append(np.zeros(e))
                continue
            f = self.fields[name]
            if f["source"] == "user":
                v = user_id if name == "user_id" else features.get(name)
            else:
                v = context.get(name)
            rows = self.field_buckets(name, v)
            parts.append(self.cand_tables[name][rows].mean(axis=0))
        x = np.concatenate(parts)
        for w, b, act in self.tower:
            x = x @ w + b
            if act == "relu":
                x = np.maximum(x, 0.0)
        return x

    # -- retrieval -----------------------------------------------------------
    def scores(self, u):
        return self.item_emb @ u

    def banned(self, history, exclude, include_seen):
        ban = set(self.known_history(exclude))
        if not include_seen:
            ban |= set(self.known_history(history))
        return ban

    def topk(self, scores, k, banned=()):
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order:
            if int(i) in banned:
                continue
            out.append(int(i))
            if len(out) == k:
                break
        return out

    def popular(self, k, banned=()):
        return [i for i in self.by_pop if i not in banned][:k]

    # -- the content model ---------------------------------------------------
    def content(self):
        """The ContentRef of this bundle (built once), or None without one."""
        if "content" not in self.m:
            return None
        if getattr(self, "_content", None) is None:
            self._content = ContentRef(self)
        return self._content

    # -- the ranker ----------------------------------------------------------
    def ranker(self):
        """The RankerRef of this bundle (built once), or None without one."""
        if "ranker" not in self.m:
            return None
        if getattr(self, "_ranker", None) is None:
            self._ranker = RankerRef(self)
        return self._ranker


class ContentRef:
    """The content model (models/FORMAT.md "content"; van den Oord et al.
    2013: an item's latent vector regressed from its content) in float64.

    Field vector = mean of content.emb.f rows over the field's value texts
    (absent, null or [] = the one text ""); x = concatenation in
    content.fields order; each layer act(x @ w + b), act relu or linear;
    the last output is the item's cand.item_emb-space vector."""

    def __init__(self, ref):
        self.ref = ref
        c = ref.m["content"]
        t = ref.tensors
        assert c["type"] == "mlp", c["type"]
        self.embed_dim = c["embed_dim"]
        self.fields = [f["name"] for f in c["fields"]]
        self.tables = {f["name"]: t[f["tensor"]].astype(np.float64) for f in c["fields"]}
        self.layers = [(t[l["w"]].astype(np.float64), t[l["b"]].astype(np.float64).reshape(-1),
                        l["activation"]) for l in c["layers"]]

    def texts(self, field, v):
        """Value texts of one field value (BadValue for a 400 value)."""
        f = self.ref.fields[field]
        if isinstance(v, list):
            if not f.get("multi_valued") or any(isinstance(x, (list, dict)) for x in v):
                raise BadValue(field)
            vals = v if v else [None]
        else:
            if isinstance(v, dict):
                raise BadValue(field)
            vals = [v]
        return [self.ref.text(field, x) for x in vals]

    def given(self, features):
        """Does any content field carry a value other than the missing ""?"""
        features = features or {}
        return any(t != "" for f in self.fields for t in self.texts(f, features.get(f)))

    def embed(self, features):
        """The vector of an item PUT with these features (absent = missing)."""
        features = features or {}
        parts = []
        for name in self.fields:
            rows = [self.ref.bucket(name, t) for t in self.texts(name, features.get(name))]
            parts.append(self.tables[name][rows].mean(axis=0))
        x = np.concatenate(parts)
        for w, b, act in self.layers:
            x = x @ w + b
            if act == "relu":
                x = np.maximum(x, 0.0)
        return x

    def catalog_features(self, i):
        """The content features of catalog row i as a PUT body would give
        them (items.tsv cells: multi-valued split on "|", numbers as numbers)."""
        row = self.ref.rows[i]
        out = {}
        for name in self.fields:
            f = self.ref.fields[name]
            cell = row[self.ref.columns.index(f.get("column", name))]
            if f["type"] == "bucketized":
                x = float(cell)
                out[name] = int(x) if x == int(x) else x
            elif f.get("multi_valued"):
                out[name] = cell.split("|") if cell != "" else []
            else:
                out[name] = cell
        return out


def assert_same_ranking(got_ids, got_scores, want_idx, scores, ids, tol=1e-4, what=""):
    """recd's list against the exact reference.

    Same length; every score within tol of the reference score of the same
    item and of the reference score at that rank; the ids equal position by
    position except where the reference scores at the swapped positions are
    equal within float rounding (1e-6 relative), i.e. a tie."""
    want_ids = [ids[i] for i in want_idx]
    assert len(got_ids) == len(want_ids), "%s: %d items, expected %d" % (
        what, len(got_ids), len(want_ids))
    assert len(set(got_ids)) == len(got_ids), "%s: duplicate ids %r" % (what, got_ids)
    index_of = {iid: i for i, iid in enumerate(ids)}
    for pos, (gid, gs) in enumerate(zip(got_ids, got_scores)):
        ref_here = scores[want_idx[pos]]
        assert gid in index_of, "%s: unknown id %s at %d" % (what, gid, pos)
        own = scores[index_of[gid]]
        assert abs(gs - own) <= tol * max(1.0, abs(own)), \
            "%s: %s scored %.7f, reference %.7f" % (what, gid, gs, own)
        if gid != want_ids[pos]:
            tie = abs(own - ref_here) <= 1e-6 * max(1.0, abs(ref_here))
            assert tie, ("%s: position %d is %s (ref score %.7f), expected %s (%.7f)\n"
                         "got      %r\nexpected %r" % (what, pos, gid, own, want_ids[pos],
                                                      ref_here, got_ids[:20], want_ids[:20]))


class RankerRef:
    """DeepFM (Guo et al. 2017) and Wide&Deep (Cheng et al. 2016) exactly as
    BUNDLE.md "Feature hashing and the forward passes" pins them, in float64.

    Field vector v_f = mean of rank.emb.f rows over the field's value texts,
    first-order w_f = sum of rank.lin.f rows / n; DeepFM's pairwise term by
    the sum-of-squares identity; Wide&Deep crosses hashed as a field named
    "<f1>x<f2>" over the texts joined by \x1f, averaged over value pairs;
    deep = ReLU MLP over concat(v_f) then a linear output unit."""

    def __init__(self, ref):
        self.ref = ref
        m = ref.m["ranker"]
        t = ref.tensors
        self.type = m["type"]
        assert self.type in ("deepfm", "wide_deep"), self.type
        self.output = m.get("output", "sigmoid")
        self.k = m["embed_dim"]
        self.fields = [f["name"] for f in m["fields"]]
        self.emb = {f["name"]: t[f["emb"]].astype(np.float64) for f in m["fields"]}
        self.lin = {f["name"]: t[f["lin"]].astype(np.float64).reshape(-1) for f in m["fields"]}
        self.bias = float(t[m["bias"]].reshape(-1)[0])
        self.mlp = [(t[l["w"]].astype(np.float64), t[l["b"]].astype(np.float64).reshape(-1),
                     l.get("activation", "relu")) for l in m.get("mlp", [])]
        self.out_w = t[m["out"]["w"]].astype(np.float64).reshape(-1)
        self.out_b = float(t[m["out"]["b"]].reshape(-1)[0])
        self.crosses = []
        for c in m.get("crosses", []) if self.type == "wide_deep" else []:
            f1, f2 = c["fields"]
            self.crosses.append((f1, f2, f1 + "x" + f2, c["buckets"],
                                 t[c["tensor"]].astype(np.float64).reshape(-1)))
        self.item_fields = [f for f in self.fields if ref.fields[f]["source"] == "item"]
        self.req_fields = [f for f in self.fields if ref.fields[f]["source"] != "item"]
        self._buckets = {}
        # every catalog item's texts, field vectors and first-order terms
        self.item_texts = [self.catalog_item_texts(i) for i in range(ref.n)]
        self.item_vec = {}
        self.item_lin = {}
        for f in self.item_fields:
            vs = np.empty((ref.n, self.k))
            ws = np.empty(ref.n)
            for i in range(ref.n):
                vs[i], ws[i] = self.field_part(f, self.item_texts[i][f])
            self.item_vec[f] = vs
            self.item_lin[f] = ws

    # -- texts and buckets ----------------------------------------------------
    def bucket(self, field, text, buckets=None):
        key = (field, text, buckets)
        b = self._buckets.get(key)
        if b is None:
            b = self.ref.bucket(field, text, buckets)
            self._buckets[key] = b
        return b

    def texts(self, field, v):
        """Value texts of one field value (raises BadValue on a 400 value)."""
        f = self.ref.fields[field]
        if isinstance(v, list):
            if not f.get("multi_valued"):
                raise BadValue(field)
            if any(isinstance(x, (list, dict)) for x in v):
                raise BadValue(field)
            vals = v if v else [None]
        else:
            if isinstance(v, dict):
                raise BadValue(field)
            vals = [v]
        return [self.ref.text(field, x) for x in vals]

    def catalog_item_texts(self, i):
        """Texts of the item fields of catalog row i, from items.tsv."""
        row = self.ref.rows[i]
        out = {}
        for name in self.item_fields:
            f = self.ref.fields[name]
            col = f.get("column", name)
            cell = row[self.ref.columns.index(col)]
            if f["type"] == "bucketized":
                x = float(cell)
                v = int(x) if x == int(x) else x
            elif f.get("multi_valued"):
                v = cell.split("|") if cell != "" else []
            else:
                v = cell
            out[name] = self.texts(name, v)
        return out

    def live_item_texts(self, item_id, features):
        """Texts of a live item PUT with these features (absent = missing);
        item_id is the id itself."""
        features = features or {}
        out = {}
        for name in self.item_fields:
            f = self.ref.fields[name]
            if f.get("column") == "id":
                out[name] = [item_id]
            else:
                out[name] = self.texts(name, features.get(name))
        return out

    def request_texts(self, user_id, features=None, context=None):
        """Texts of the user and context fields of one request (BUNDLE.md
        serving semantics 1)."""
        features = features or {}
        context = context or {}
        out = {}
        for name in self.req_fields:
            src = self.ref.fields[name]["source"]
            if src == "user" and name == "user_id":
                v = user_id
            elif src == "user":
                v = features.get(name)
            else:
                v = context.get(name)
            out[name] = self.texts(name, v)
        return out

    def field_part(self, field, texts):
        rows = [self.bucket(field, t) for t in texts]
        return self.emb[field][rows].mean(axis=0), self.lin[field][rows].sum() / len(rows)

    # -- the forward pass -----------------------------------------------------
    def score(self, user_id, features=None, context=None, items=(), live=None):
        """Parts of the logit and the score for each item: items are catalog
        indices (int) or live item ids (str) whose PUT features are
        live[id]. Returns a dict of float64 arrays: bias, first_order,
        second_order, deep, logit, score."""
        live = live or {}
        req = self.request_texts(user_id, features, context)
        n = len(items)
        itexts = [self.item_texts[x] if isinstance(x, (int, np.integer))
                  else self.live_item_texts(x, live.get(x)) for x in items]
        vecs, lins = [], []
        for f in self.fields:
            if f in req:
                v, w = self.field_part(f, req[f])
                vecs.append(np.tile(v, (n, 1)))
                lins.append(np.full(n, w))
            else:
                v = np.empty((n, self.k))
                w = np.empty(n)
                for j, x in enumerate(items):
                    if isinstance(x, (int, np.integer)):
                        v[j], w[j] = self.item_vec[f][x], self.item_lin[f][x]
                    else:
                        v[j], w[j] = self.field_part(f, itexts[j][f])
                vecs.append(v)
                lins.append(w)
        first = np.sum(lins, axis=0)
        if self.type == "deepfm":
            s = np.sum(vecs, axis=0)
            second = 0.5 * ((s * s).sum(axis=1) - sum((v * v).sum(axis=1) for v in vecs))
        else:
            second = np.zeros(n)
            for f1, f2, cname, buckets, table in self.crosses:
                for j in range(n):
                    t1 = req[f1] if f1 in req else itexts[j][f1]
                    t2 = req[f2] if f2 in req else itexts[j][f2]
                    acc = 0.0
                    for a in t1:
                        for b in t2:
                            acc += table[self.bucket(cname, a + "\x1f" + b, buckets)]
                    second[j] += acc / (len(t1) * len(t2))
        x = np.concatenate(vecs, axis=1)
        for w, b, act in self.mlp:
            x = x @ w + b
            if act == "relu":
                x = np.maximum(x, 0.0)
        deep = x @ self.out_w + self.out_b
        logit = self.bias + first + second + deep
        if self.output == "exp":
            score = np.exp(logit)
        else:
            score = 1.0 / (1.0 + np.exp(-logit))
        return {"bias": np.full(n, self.bias), "first_order": first, "second_order": second,
                "deep": deep, "logit": logit, "score": score}


def assert_score_order(got_ids, want_score_of, tie=1e-6, what=""):
    """recd's list is sorted by the reference score: every item scores (by
    the reference) at least the next one's score minus tie."""
    for pos in range(len(got_ids) - 1):
        a, b = want_score_of[got_ids[pos]], want_score_of[got_ids[pos + 1]]
        assert a >= b - tie, ("%s: position %d %s (ref %.9f) before %s (ref %.9f)"
                              % (what, pos, got_ids[pos], a, got_ids[pos + 1], b))


def assert_same_top(got_ids, want_score_of, k, tie=1e-6, what=""):
    """recd's first k ids are the reference's top k in order; a swap is
    allowed only between items whose reference scores are within tie."""
    want = sorted(want_score_of, key=lambda i: -want_score_of[i])[:k]
    got = list(got_ids[:k])
    assert len(got) == len(want), (what, got, want)
    for pos, (g, w) in enumerate(zip(got, want)):
        if g != w:
            assert abs(want_score_of[g] - want_score_of[w]) <= tie, (
                "%s: top-%d position %d is %s (ref %.9f), expected %s (ref %.9f)\n"
                "got  %r\nwant %r" % (what, k, pos, g, want_score_of[g], w,
                                       want_score_of[w], got, want))
