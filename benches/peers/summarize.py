"""Table of steps/s for gradlab and its peers from one bench-peers run, with ratios.

usage: python summarize.py results.jsonl [--max-foreign 0.15]

For every (framework, mode, workload, threads) the best record over the run's rounds is used
(run.sh repeats the whole sequence, so a slow minute on a shared machine does not decide a
row); a figure measured while other processes used more than --max-foreign cores is marked
'!'. Ratios are
gradlab's steps/s (its default `portable` engine; older records: `cpu`, then `flex`) over the
peer's on the same workload and thread count (> 1: gradlab is faster); the other gradlab rows
are its `cpu` engine (the `gemm` crate's products) and `flex` (Burn's ops one by one).
Records of `"bench": "sgemm"` (gradlab's `bench-sgemm`, `bench_sgemm.py`) make a GFLOP/s table.
"""
import argparse
import json

ap = argparse.ArgumentParser()
ap.add_argument("path")
ap.add_argument("--max-foreign", type=float, default=0.15)
args = ap.parse_args()

recs = [json.loads(l) for l in open(args.path) if l.strip().startswith("{")]
best = {}
for r in recs:
    if "workload" not in r or r.get("check"):
        continue
    fw = r["framework"].split("-")[0]
    key = (fw, r["mode"], r["workload"], r["threads"])
    if key not in best or r["steps_per_s_median"] > best[key]["steps_per_s_median"]:
        best[key] = r

wls = ["w1", "w1_noprobe", "w2", "w2_noprobe", "lstm", "rnn"]
rows = []
for key in best:
    if (key[0], key[1]) not in rows:
        rows.append((key[0], key[1]))
rows.sort(key=lambda fm: (fm[0] != "gradlab", fm))


def cell(r):
    if r is None:
        return "missing"
    mark = "" if r["foreign_cpu_max"] <= args.max_foreign else "!"
    return f'{r["steps_per_s_median"]:.1f}{mark}'


threads = sorted({k[3] for k in best})
for t in threads:
    print(f"\n### steps/s, {t} thread(s) (median of a round's repetitions, best round; '!' = other processes were busy)\n")
    print("| framework | mode | " + " | ".join(wls) + " |")
    print("|---|---|" + "---|" * len(wls))
    for fw, mode in rows:
        print(f"| {fw} | {mode} | " + " | ".join(cell(best.get((fw, mode, w, t))) for w in wls) + " |")
    # Ratios are taken for gradlab's default engine (portable; older records: cpu, flex).
    engine = next(e for e in ["portable", "cpu", "flex"] if any(k[:2] == ("gradlab", e) for k in best))
    print(f"\n### gradlab ({engine}) / peer, {t} thread(s)\n")
    print("| peer | " + " | ".join(wls) + " |")
    print("|---|" + "---|" * len(wls))
    for fw, mode in rows:
        if (fw, mode) == ("gradlab", engine):
            continue
        cells = []
        for w in wls:
            g = best.get(("gradlab", engine, w, t))
            p = best.get((fw, mode, w, t))
            cells.append(f'{g["steps_per_s_median"] / p["steps_per_s_median"]:.2f}×' if g and p else "-")
        print(f"| {fw} {mode} | " + " | ".join(cells) + " |")
    print()
    for fw, mode in rows:
        if fw != "gradlab":
            continue
        for w in ["w1", "w2"]:
            on, off = best.get((fw, mode, w, t)), best.get((fw, mode, w + "_noprobe", t))
            if on and off:
                print(f"gradlab ({mode}) {w.upper()} probe overhead: "
                      f"{100 * (on['ms_per_step'] / off['ms_per_step'] - 1):+.1f}% of a step  ")

sgemm = {}
for r in recs:
    if r.get("bench") == "sgemm":
        key = (r["lib"], r["threads"], tuple(r["m_k_n"]))
        if key not in sgemm or r["gflops_median"] > sgemm[key]["gflops_median"]:
            sgemm[key] = r
if sgemm:
    shapes = sorted({k[2] for k in sgemm}, key=lambda s: -s[0] * s[1] * s[2])
    for t in sorted({k[1] for k in sgemm}):
        print(f"\n### sgemm GFLOP/s, {t} thread(s) (C = A·B, m×k by k×n; median, best round)\n")
        print("| library | " + " | ".join("×".join(map(str, s)) for s in shapes) + " |")
        print("|---|" + "---|" * len(shapes))
        for lib in sorted({k[0] for k in sgemm if k[1] == t}):
            cells = [f'{sgemm[(lib, t, s)]["gflops_median"]:.1f}' if (lib, t, s) in sgemm else "-" for s in shapes]
            print(f"| {lib} | " + " | ".join(cells) + " |")
