#!/usr/bin/python3
"""PyTorch CPU reference for `make bench-train`: the models recd-train fit
trains, written the usual PyTorch way, timed on one thread on the same
synthetic dataset.

  /usr/bin/python3 loadtest/torch_train.py --data DATASET_DIR [--json OUT]

Models (shapes and hyper-parameters from src/train/cand.c tf_cand_defaults,
src/train/trank.c recd_trank_defaults and src/train/fit.c recd_fit_defaults):

  candidate  YouTube DNN (Covington et al., RecSys 2016): mean of the last
             <= 50 history items' embeddings (EmbeddingBag mean) and the user
             fields' embeddings (E = 64), concatenated, a ReLU tower 256 -> 64
             (ReLU on every layer, as recd), sampled softmax over 2048
             negatives shared by a batch of 256, drawn from popularity^0.75
             (--sampler logu: log-uniform over the popularity rank), logits
             corrected by -log(S Q(j)) (Jean et al. 2015), accidental hits
             masked. Adam lr 2e-3 on the tower, SparseAdam lr 2e-3 on the
             three kinds of tables. bench_train.sh passes recd-train fit's
             current defaults (from its --help), so the two stay in step.
  deepfm     DeepFM (Guo et al., IJCAI 2017) on the ranker's fields (user_id,
             the user columns but zip, item_id, genres (multi-valued, mean),
             year (bucketized), the event context columns), K = 16, first-
             order weights per field, FM term by Rendle's identity, MLP
             256-128-64 -> 1, weighted logloss, batch 256. Adam lr 1e-3
             (L2 3e-3 on MLP weights) on the dense part, SparseAdam lr 1e-2
             on the tables (recd's lazy Adam: only the rows a batch touched).
  wide_deep  Wide&Deep (Cheng et al., DLRS 2016): the same deep part without
             the FM term, plus one wide table per cross (every non-item
             field x genres, as src/train/rdata.c tf_crosses).
  deepfm_fused, wide_deep_fused
             the same models with the single-valued fields' tables fused
             into one nn.Embedding (ids offset per field): fewer, larger
             sparse lookups and optimiser calls, the faster layout in
             PyTorch; multi-valued fields keep an EmbeddingBag each.

Bucket counts are the trainer's (src/train/feat.c tf_schema_build); field
values hash with FNV-1a-64 as BUNDLE.md says, crosses with CRC-32 (the
speed does not depend on which ids, only on how many).

What is timed: forward, backward and the optimiser steps (zero_grad,
loss, backward, step) of --rounds rounds of a fixed number of batches
after a warm-up (which also pays for the optimiser state's first touch);
the best and the median round are reported, and examples per CPU second
over all rounds. The candidate model's negative sampling is inside the
loop, as in recd.
Building the batches' index tensors (history lists, multi-valued offsets)
is data loading and happens before the clock starts. Known differences
from recd, both of which make recd do slightly more work: SparseAdam has
no weight decay (recd applies L2 to the touched rows: 1e-3 in the ranker,
1e-6 in the candidate model), and recd's candidate figure includes
building each example's history.
"""
import argparse
import json
import math
import os
import sys
import time
import zlib


def _argv_threads(argv):
    """--threads N from the command line (1 if absent), needed before torch
    loads: OpenBLAS (Debian's torch uses libblas.so.3 = OpenBLAS) sizes its
    thread pool from the environment when it loads, and torch.set_num_threads
    does not reach it."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = _argv_threads(sys.argv[1:])

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the bench script checks first; this is for direct use
    print("torch_train.py: %s (Debian: apt-get install python3-torch)" % e, file=sys.stderr)
    sys.exit(3)

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1

# ---- feature hashing -----------------------------------------------------------


def fnv1a64(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


class Hasher:
    """bucket(field, text) = FNV-1a-64(field + "\\x1f" + text) mod buckets,
    cached per distinct text."""

    def __init__(self, name, buckets):
        self.name, self.buckets, self.cache = name, buckets, {}

    def __call__(self, text):
        b = self.cache.get(text)
        if b is None:
            b = fnv1a64((self.name + "\x1f" + text).encode()) % self.buckets
            self.cache[text] = b
        return b


def bisect_text(bounds, cell):
    """Bucketized text: the decimal count of bounds <= v; "" if not a number."""
    try:
        v = float(cell)
    except ValueError:
        return ""
    if not math.isfinite(v):
        return ""
    return str(sum(1 for b in bounds if b <= v))


def pow2_at_least(n, lo):
    p = lo
    while p < n:
        p *= 2
    return p


# ---- dataset ---------------------------------------------------------------------


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in f]
    return header, rows


POSITIVE = {"click", "watch", "purchase"}


class Field:
    """One ranker/candidate field: per row of its source table, a list of
    bucket ids (one for single-valued fields)."""

    def __init__(self, name, source, buckets, multi=False):
        self.name, self.source, self.buckets, self.multi = name, source, buckets, multi
        self.texts = []  # per row: list of texts (for crosses)
        self.ids = []  # per row: list of bucket ids


def load(data_dir):
    uh, urows = read_tsv(os.path.join(data_dir, "users.tsv"))
    ih, irows = read_tsv(os.path.join(data_dir, "items.tsv"))
    eh, erows = read_tsv(os.path.join(data_dir, "events.tsv"))
    uidx = {r[0]: i for i, r in enumerate(urows)}
    iidx = {r[0]: i for i, r in enumerate(irows)}
    U, N = len(urows), len(irows)

    def fill(f, cells, bounds=None):
        h = Hasher(f.name, f.buckets)
        for c in cells:
            vals = c.split("|") if f.multi else [c]
            if bounds is not None:
                vals = [bisect_text(bounds, v) if v else "" for v in vals]
            f.texts.append(vals)
            f.ids.append([h(v) for v in vals])
        return f

    fields = []
    fields.append(fill(Field("user_id", "user", pow2_at_least(2 * U, 1024)), [r[0] for r in urows]))
    for c, name in enumerate(uh[1:], 1):
        if name == "zip" or any(f.name == name for f in fields):
            continue
        if name == "age":
            fields.append(fill(Field(name, "user", 16), [r[c] for r in urows],
                               [18, 25, 35, 45, 50, 56]))
        else:
            fields.append(fill(Field(name, "user", 64), [r[c] for r in urows]))
    user_fields = list(fields)
    fields.append(fill(Field("item_id", "item", pow2_at_least(2 * N, 1024)), [r[0] for r in irows]))
    if "genres" in ih:
        c = ih.index("genres")
        fields.append(fill(Field("genres", "item", 64, multi=True), [r[c] for r in irows]))
    if "year" in ih:
        c = ih.index("year")
        fields.append(fill(Field("year", "item", 32), [r[c] for r in irows],
                           [1940 + 10 * i for i in range(9)]))
    ctx_cols = [(c, n) for c, n in enumerate(eh[5:], 5) if not any(f.name == n for f in fields)]

    # events: users/items as rows; context fields hashed per event
    ev_user = np.empty(len(erows), dtype=np.int64)
    ev_item = np.empty(len(erows), dtype=np.int64)
    ev_ts = np.empty(len(erows), dtype=np.int64)
    ev_type, ev_val = [], np.empty(len(erows), dtype=np.float32)
    ctx_fields = [Field(n, "context", 16) for _, n in ctx_cols]
    ctx_hash = [Hasher(f.name, f.buckets) for f in ctx_fields]
    for k, r in enumerate(erows):
        ev_user[k] = uidx[r[0]]
        ev_item[k] = iidx[r[1]]
        ev_ts[k] = int(r[2])
        ev_type.append(r[3])
        ev_val[k] = float(r[4])
        for j, (c, _) in enumerate(ctx_cols):
            ctx_fields[j].texts.append([r[c]])
            ctx_fields[j].ids.append([ctx_hash[j](r[c])])
    fields.extend(ctx_fields)
    return {
        "U": U, "N": N, "E": len(erows), "fields": fields, "user_fields": user_fields,
        "user": ev_user, "item": ev_item, "ts": ev_ts, "type": ev_type, "value": ev_val,
    }


def interactions(ds):
    """First positive of each (user, item), per user in time order (as
    src/train/split.c): returns (uoff, items)."""
    pos = [k for k, t in enumerate(ds["type"]) if t in POSITIVE or
           (t == "rating" and ds["value"][k] >= 4.0)]
    pos.sort(key=lambda k: (ds["user"][k], ds["ts"][k], k))
    seen, users, items = set(), [], []
    for k in pos:
        key = (int(ds["user"][k]), int(ds["item"][k]))
        if key in seen:
            continue
        seen.add(key)
        users.append(key[0])
        items.append(key[1])
    uoff = np.zeros(ds["U"] + 1, dtype=np.int64)
    np.add.at(uoff, np.array(users, dtype=np.int64) + 1, 1)
    return np.cumsum(uoff), np.array(items, dtype=np.int64), np.array(users, dtype=np.int64)


def ranker_examples(ds):
    """Impressions labelled by a positive of the same (user, item) within
    an hour; weight = the first such watch's seconds (as src/train/rdata.c)."""
    pos = {}
    for k, t in enumerate(ds["type"]):
        if t in POSITIVE:
            pos.setdefault((int(ds["user"][k]), int(ds["item"][k])), []).append(k)
    watch = any(t == "watch" and ds["value"][k] > 0 for k, t in enumerate(ds["type"]))
    ev, label, weight = [], [], []
    for k, t in enumerate(ds["type"]):
        if t != "impression":
            continue
        y, w, watched = 0.0, 1.0, False
        ts = ds["ts"][k]
        for p in sorted(pos.get((int(ds["user"][k]), int(ds["item"][k])), ()),
                        key=lambda p: ds["ts"][p]):
            if ds["ts"][p] < ts:
                continue
            if ds["ts"][p] > ts + 3600:
                break
            y = 1.0
            if watch and not watched and ds["type"][p] == "watch" and ds["value"][p] > 0:
                w, watched = float(ds["value"][p]), True
        ev.append(k)
        label.append(y)
        weight.append(w)
    return np.array(ev, dtype=np.int64), np.array(label, np.float32), np.array(weight, np.float32)


# ---- timing ------------------------------------------------------------------------


def time_rounds(step, batches, warmup, rounds, per_round, B):
    """Run step over batches: warmup untimed, then rounds of per_round
    batches, each timed by the wall clock and the process CPU clock. The
    machine may be shared: the best round is the least disturbed one."""
    for b in batches[:warmup]:
        step(b)
    wall, cpu, loss = [], [], 0.0
    for r in range(rounds):
        part = batches[warmup + r * per_round:warmup + (r + 1) * per_round]
        t0, c0 = time.perf_counter(), time.process_time()
        for b in part:
            loss += float(step(b))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    n = per_round * B
    rates = sorted(n / w for w in wall)
    return {"examples_per_s": rates[-1], "examples_per_s_median": rates[len(rates) // 2],
            "examples_per_cpu_s": n * rounds / sum(cpu), "rounds": rounds,
            "batches": per_round, "batch": B, "seconds": sum(wall), "cpu_seconds": sum(cpu),
            "loss": loss / (rounds * per_round)}


# ---- ranker ------------------------------------------------------------------------


def field_row(f, ds, k):
    return ds["user"][k] if f.source == "user" else ds["item"][k] if f.source == "item" else k


def crosses(fields):
    g = next((f for f in fields if f.name == "genres"), None)
    if g is None:
        return []
    out = []
    for f in fields:
        if f.source == "item":
            continue
        nb = f.buckets * 16 if f.name == "user_id" else 4096
        out.append((f, g, min(nb, 1 << 22), f.name + "x" + g.name))
    return out


def bag_input(lists):
    """EmbeddingBag arguments for a batch: (ids [B, 1]) when every example
    has one value, else (flat ids, offsets)."""
    if all(len(x) == 1 for x in lists):
        return (torch.tensor([x[0] for x in lists], dtype=torch.long).view(-1, 1),)
    flat = [v for x in lists for v in x]
    offs = np.cumsum([0] + [len(x) for x in lists[:-1]])
    return (torch.tensor(flat, dtype=torch.long), torch.tensor(offs, dtype=torch.long))


def ranker_batches(ds, ex, label, weight, kind, B, nbatches, rng, fused):
    fields = ds["fields"]
    base, singles = 0, []
    for f in fields:  # fused: single-valued fields' ids offset into one table
        if not f.multi:
            singles.append((f, base))
            base += f.buckets
    cr = crosses(fields) if kind == "wide_deep" else []
    order = rng.permutation(len(ex))
    need = nbatches * B
    order = np.resize(order, need)  # wraps around when the data is small
    batches = []
    for s in range(0, need, B):
        idx = order[s:s + B]
        ks = ex[idx]
        if fused:
            one = torch.tensor([[f.ids[field_row(f, ds, k)][0] + b for f, b in singles]
                                for k in ks], dtype=torch.long)
            inputs = [one] + [bag_input([f.ids[field_row(f, ds, k)] for k in ks])
                              for f in fields if f.multi]
        else:
            inputs = [bag_input([f.ids[field_row(f, ds, k)] for k in ks]) for f in fields]
        wide = []
        for a, g, nb, name in cr:
            lists = []
            for k in ks:
                ta, tg = a.texts[field_row(a, ds, k)], g.texts[field_row(g, ds, k)]
                lists.append([zlib.crc32(("%s\x1f%s\x1f%s" % (name, x, y)).encode()) % nb
                              for x in ta for y in tg])
            wide.append(bag_input(lists))
        batches.append((inputs, wide, torch.from_numpy(label[idx]),
                        torch.from_numpy(weight[idx])))
    return batches, cr


def glorot_(lin):
    nn.init.xavier_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)


class Ranker(nn.Module):
    """DeepFM or Wide&Deep. fused: the single-valued fields share one
    nn.Embedding (ids offset per field, as pytorch-fm's FeaturesEmbedding
    does), so a batch makes 2 sparse lookups and 2 sparse gradients instead
    of one per field; multi-valued fields keep an EmbeddingBag each."""

    def __init__(self, fields, cr, kind, K, hidden, base_logit, fused):
        super().__init__()
        self.fm, self.fused = kind == "deepfm", fused
        if fused:
            nsingle = sum(f.buckets for f in fields if not f.multi)
            bag = [f for f in fields if f.multi]
            self.one_emb = nn.Embedding(nsingle, K, sparse=True)
            self.one_lin = nn.Embedding(nsingle, 1, sparse=True)
            tables = [self.one_emb]
            lins = [self.one_lin]
        else:
            bag, tables, lins = fields, [], []
        self.emb = nn.ModuleList(nn.EmbeddingBag(f.buckets, K, mode="mean", sparse=True)
                                 for f in bag)
        self.lin = nn.ModuleList(nn.EmbeddingBag(f.buckets, 1, mode="mean", sparse=True)
                                 for f in bag)
        self.wide = nn.ModuleList(nn.EmbeddingBag(nb, 1, mode="mean", sparse=True)
                                  for _, _, nb, _ in cr)
        for e in tables + list(self.emb):
            nn.init.normal_(e.weight, 0.0, 0.01)
        for e in lins + list(self.lin) + list(self.wide):
            nn.init.zeros_(e.weight)
        self.bias = nn.Parameter(torch.tensor([base_logit], dtype=torch.float32))
        layers, prev = [], len(fields) * K
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        layers.append(nn.Linear(prev, 1))
        for m in layers:
            if isinstance(m, nn.Linear):
                glorot_(m)
        self.mlp = nn.Sequential(*layers)
        self.nf, self.K = len(fields), K

    def forward(self, inputs, wide):
        if self.fused:
            one, bags = inputs[0], inputs[1:]
            B = one.shape[0]
            vs = [self.one_emb(one).view(B, -1)] + [e(*x) for e, x in zip(self.emb, bags)]
            z = self.bias + self.one_lin(one).sum((1, 2))
            lin_in = bags
        else:
            vs = [e(*x) for e, x in zip(self.emb, inputs)]
            z = self.bias
            lin_in = inputs
        x = torch.cat(vs, 1)
        for l, x_ in zip(self.lin, lin_in):
            z = z + l(*x_).squeeze(1)
        for w, x_ in zip(self.wide, wide):
            z = z + w(*x_).squeeze(1)
        if self.fm:
            v = x.view(-1, self.nf, self.K)
            s = v.sum(1)
            z = z + 0.5 * ((s * s).sum(1) - (v * v).sum((1, 2)))
        return z + self.mlp(x).squeeze(1)

    def optimizers(self, lr_dense, lr_sparse, l2_dense):
        w = [m.weight for m in self.mlp if isinstance(m, nn.Linear)]
        b = [m.bias for m in self.mlp if isinstance(m, nn.Linear)] + [self.bias]
        dense = torch.optim.Adam([{"params": w, "weight_decay": l2_dense},
                                  {"params": b, "weight_decay": 0.0}], lr=lr_dense)
        tabs = [p for n, p in self.named_parameters() if n.split(".")[0] in
                ("one_emb", "one_lin", "emb", "lin", "wide")]
        sparse = torch.optim.SparseAdam(tabs, lr=lr_sparse)
        return dense, sparse


def run_ranker(ds, kind, args, rng):
    fused = kind.endswith("_fused")
    kind = kind[:-len("_fused")] if fused else kind
    ex, label, weight = ds["rex"]
    B, nb = args.rank_batch, args.warmup + args.rounds * args.batches
    batches, cr = ranker_batches(ds, ex, label, weight, kind, B, nb, rng, fused)
    wmean = float((weight).mean())
    p = float((weight * label).sum() / weight.sum())
    p = min(max(p, 1e-6), 1 - 1e-6)
    model = Ranker(ds["fields"], cr, kind, args.rank_embed, args.rank_hidden,
                   math.log(p / (1 - p)), fused)
    dense, sparse = model.optimizers(1e-3, 1e-2, 3e-3)
    scale = 1.0 / (B * wmean)

    def step(batch):
        inputs, wide, y, w = batch
        dense.zero_grad(set_to_none=True)
        sparse.zero_grad(set_to_none=True)
        z = model(inputs, wide)
        loss = F.binary_cross_entropy_with_logits(z, y, weight=w, reduction="sum") * scale
        loss.backward()
        dense.step()
        sparse.step()
        return loss

    r = time_rounds(step, batches, args.warmup, args.rounds, args.batches, B)
    r.update({"fields": len(ds["fields"]), "crosses": len(cr)})
    return r


# ---- candidate model -----------------------------------------------------------------


class Candidate(nn.Module):
    def __init__(self, N, user_fields, E, D, hidden):
        super().__init__()
        self.hist = nn.EmbeddingBag(N, E, mode="mean", sparse=True)
        self.ftab = nn.ModuleList(nn.EmbeddingBag(f.buckets, E, mode="mean", sparse=True)
                                  for f in user_fields)
        self.item = nn.Embedding(N, D, sparse=True)
        for t in [self.hist, self.item] + list(self.ftab):
            nn.init.normal_(t.weight, 0.0, 0.05)
        layers, prev = [], E * (1 + len(user_fields))
        for h in list(hidden) + [D]:
            lin = nn.Linear(prev, h)
            nn.init.xavier_uniform_(lin.weight)
            nn.init.constant_(lin.bias, 0.01)
            layers += [lin, nn.ReLU()]  # ReLU on every layer, the last too
            prev = h
        self.tower = nn.Sequential(*layers)

    def user_vec(self, hist, fields):
        x = torch.cat([self.hist(*hist)] + [t(*f) for t, f in zip(self.ftab, fields)], 1)
        return self.tower(x)


def run_candidate(ds, args, rng):
    uoff, items, users = ds["inter"]
    N = ds["N"]
    ufields = ds["user_fields"]
    B, L, S = args.batch, args.history_max, args.negatives
    S = min(S, N)
    # the proposal Q (src/train/cand.c): popularity^0.75 over the training
    # counts (inverse CDF by binary search), or log-uniform over the
    # popularity rank
    count = np.bincount(items, minlength=N).astype(np.float64)
    if args.sampler == "pop":
        mass = np.power(count + 1.0, 0.75)
        cdf = np.cumsum(mass)
        logq = 0.75 * np.log(count + 1.0) - math.log(cdf[-1])
        cdf_t, total = torch.from_numpy(cdf), float(cdf[-1])

        def draw():
            x = torch.rand(S, generator=gen, dtype=torch.float64) * total
            return torch.searchsorted(cdf_t, x, right=True).clamp_(max=N - 1)
    else:
        by_rank = np.lexsort((np.arange(N), -count))
        logq = np.empty(N)
        r = np.arange(N, dtype=np.float64)
        logq[by_rank] = np.log(np.log(r + 2.0) - np.log(r + 1.0)) - np.log(np.log(N + 1.0))
        by_rank_t = torch.from_numpy(by_rank.astype(np.int64))
        lnN1 = math.log(N + 1.0)

        def draw():
            x = torch.rand(S, generator=gen, dtype=torch.float64) * lnN1
            return by_rank_t[(torch.exp(x) - 1.0).long().clamp_(max=N - 1)]
    corr = torch.from_numpy((math.log(S) + logq).astype(np.float32))
    gen = torch.Generator().manual_seed(args.seed)
    # batches: example = an interaction, history = the user's <= L previous items
    nb = args.warmup + args.rounds * args.cand_batches
    order = np.resize(rng.permutation(len(items)), nb * B)
    batches = []
    for s in range(0, nb * B, B):
        at = order[s:s + B]
        hl = []
        for a in at:
            u = users[a]
            lo = max(uoff[u], a - L)
            hl.append(items[lo:a].tolist())
        flat = [v for h in hl for v in h]
        offs = np.cumsum([0] + [len(h) for h in hl[:-1]])
        hist = (torch.tensor(flat, dtype=torch.long), torch.tensor(offs, dtype=torch.long))
        fl = [bag_input([f.ids[users[a]] for a in at]) for f in ufields]
        batches.append((hist, fl, torch.from_numpy(items[at])))
    model = Candidate(N, ufields, args.embed, args.dim, args.hidden)
    dense = torch.optim.Adam(model.tower.parameters(), lr=args.lr)
    sparse = torch.optim.SparseAdam(list(model.hist.parameters()) +
                                    list(model.ftab.parameters()) +
                                    list(model.item.parameters()), lr=args.lr)
    zero = torch.zeros(B, dtype=torch.long)

    def step(batch):
        hist, fl, tgt = batch
        dense.zero_grad(set_to_none=True)
        sparse.zero_grad(set_to_none=True)
        u = model.user_vec(hist, fl)  # [B, D]
        neg = draw()  # S negatives shared by the batch
        rows = model.item(torch.cat([tgt, neg]))
        et, es = rows[:B], rows[B:]
        zp = (u * et).sum(1, keepdim=True) - corr[tgt].unsqueeze(1)
        zn = u @ es.t() - corr[neg]
        zn = zn.masked_fill(neg.unsqueeze(0) == tgt.unsqueeze(1), -1e30)
        loss = F.cross_entropy(torch.cat([zp, zn], 1), zero)
        loss.backward()
        dense.step()
        sparse.step()
        return loss

    r = time_rounds(step, batches, args.warmup, args.rounds, args.cand_batches, B)
    r["negatives"] = S
    return r


# ---- main -------------------------------------------------------------------------------


def sizes(s):
    v = [int(x) for x in s.split(",") if x]
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError("expected positive sizes, e.g. 256,128,64")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="dataset directory (recd-train synth)")
    ap.add_argument("--models", default="candidate,deepfm,wide_deep",
                    help="comma-separated: candidate, deepfm, wide_deep, deepfm_fused, "
                    "wide_deep_fused (_fused: one table for the single-valued fields)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed batches first (20)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="timed rounds; the best and the median are reported (3)")
    ap.add_argument("--batches", type=int, default=150, help="ranker batches per round (150)")
    ap.add_argument("--cand-batches", type=int, default=60,
                    help="candidate batches per round (60)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--negatives", type=int, default=2048)
    ap.add_argument("--sampler", choices=("pop", "logu"), default="pop")
    ap.add_argument("--history-max", type=int, default=50)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", type=sizes, default=[256])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--rank-embed", type=int, default=16)
    ap.add_argument("--rank-hidden", type=sizes, default=[256, 128, 64])
    ap.add_argument("--rank-batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in ("candidate", "deepfm", "wide_deep", "deepfm_fused", "wide_deep_fused"):
            ap.error("unknown model %r" % m)
    if min(args.warmup + 1, args.rounds, args.batches, args.cand_batches, args.batch,
           args.rank_batch, args.threads) < 1:
        ap.error("batch counts and sizes must be positive")
    if not os.path.isfile(os.path.join(args.data, "events.tsv")):
        ap.error("%s: not a recd dataset (no events.tsv)" % args.data)

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    t = time.perf_counter()
    ds = load(args.data)
    if "candidate" in models:
        ds["inter"] = interactions(ds)
    if any(m != "candidate" for m in models):
        ds["rex"] = ranker_examples(ds)
    load_s = time.perf_counter() - t
    res = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "dataset": {"dir": args.data, "users": ds["U"], "items": ds["N"], "events": ds["E"]},
           "load_s": load_s, "models": {}}
    print("# PyTorch %s CPU, %d thread(s); %s: %d users, %d items, %d events (loaded in %.1f s)"
          % (torch.__version__, torch.get_num_threads(), args.data, ds["U"], ds["N"], ds["E"],
             load_s))
    print("# examples/s of forward + backward + optimiser steps: the best and the median of %d "
          "rounds (wall clock), and over all rounds per CPU second" % args.rounds)
    print("%-16s %12s %12s %12s %9s" % ("torch", "best ex/s", "median ex/s", "ex/cpu-s",
                                         "batches"))
    for m in models:
        if m == "candidate":
            r = run_candidate(ds, args, rng)
        else:
            r = run_ranker(ds, m, args, rng)
        res["models"][m] = r
        print("%-16s %12.0f %12.0f %12.0f %5dx%-3d" % (m, r["examples_per_s"],
                                                     r["examples_per_s_median"],
                                                     r["examples_per_cpu_s"], r["rounds"],
                                                     r["batches"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
