#!/usr/bin/env python3
"""Independent verifier for a gradlab ledger (gradlab-ledger/1), written from ledger/README.md alone."""

import argparse
import fcntl
import json
import math
import os
import re
import sys
import time
import zlib

try:
    import blake3 as _blake3
except ImportError:  # pragma: no cover - reported as a usage problem
    sys.stderr.write("ledger-verify: the `blake3` package is required (pip install blake3)\n")
    sys.exit(2)

FORMAT = "gradlab-ledger/1"
ZERO_HASH = "0" * 64
HEX64 = re.compile(r"[0-9a-f]{64}\Z")
HASH_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}\Z')
STAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z\Z")
HEX = re.compile(r"[0-9a-f]+\Z")
SURROGATE = re.compile("[\ud800-\udfff]")
# raw-text hints: only when these occur can a fast parse hide a lone surrogate or an overflow
SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")
LONG_DIGITS = re.compile(r"(?<![0-9])[0-9]{200}")
BIG_EXPONENT = re.compile(r"[eE]\+?0*[0-9]{3}")
U64_MAX = (1 << 64) - 1


def b3(data):
    return _blake3.blake3(data).hexdigest()


# ---------------------------------------------------------------------------
# Strict JSON


class JsonError(ValueError):
    pass


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise JsonError(f"field {k!r} given twice")
        out[k] = v
    return out


def _constant(name):
    raise JsonError(f"{name} is not a JSON number")


def _float(text):
    v = float(text)
    if not math.isfinite(v):
        raise JsonError(f"number {text} is out of range")
    return v


def _int(text):
    # serde_json's reading: `-0` is a float, integers beyond 64 bits are floats
    if text == "-0":
        return -0.0
    v = int(text)
    if -(1 << 63) <= v <= U64_MAX:
        return v
    try:
        f = float(v)
    except OverflowError:
        raise JsonError(f"number {text[:20]}… is out of range") from None
    return f


def _check_surrogates(v):
    if isinstance(v, str):
        if SURROGATE.search(v):
            raise JsonError("lone surrogate in a \\u escape")
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_surrogates(k)
            _check_surrogates(x)
    elif isinstance(v, list):
        for x in v:
            _check_surrogates(x)


def strict_loads(data):
    """Parse UTF-8 bytes (or str) as one JSON value: duplicate keys, non-finite numbers and lone
    surrogates are errors; integers stay ints, anything with a fraction or exponent is a float."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    else:
        text = data
    try:
        v = json.loads(text, object_pairs_hook=_pairs, parse_float=_float, parse_int=_int,
                       parse_constant=_constant)
    except JsonError:
        raise
    except (ValueError, RecursionError, OverflowError) as e:
        raise JsonError(str(e)) from None
    if SURROGATE_HINT.search(text):
        _check_surrogates(v)
    return v


def loose_record(text, hints):
    """One trace record (a piece of JSON Lines): valid JSON, finite numbers, no lone surrogates.
    Fast path through the C scanner; the slow checks only when the raw text hints at trouble
    (`hints`: whether the whole trace text has anything that could overflow / be a surrogate)."""
    try:
        v = json.loads(text, parse_constant=_constant, parse_int=_int)
    except JsonError:
        raise
    except (ValueError, RecursionError) as e:
        raise JsonError(str(e)) from None
    overflow, surrogate = hints
    if overflow:
        _check_finite(v)
    if surrogate and SURROGATE_HINT.search(text):
        _check_surrogates(v)
    return v


def _check_finite(v):
    if isinstance(v, float):
        if not math.isfinite(v):
            raise JsonError("number out of range")
    elif isinstance(v, dict):
        for x in v.values():
            _check_finite(x)
    elif isinstance(v, list):
        for x in v:
            _check_finite(x)
    elif isinstance(v, int) and not isinstance(v, bool) and not (-(1 << 63) <= v <= U64_MAX):
        try:
            float(v)
        except OverflowError:
            raise JsonError("number out of range") from None


# ---------------------------------------------------------------------------
# Entry schema

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool))


class SchemaError(ValueError):
    pass


# type forms: "str" "u64" "num" "bool" ("enum", (..)) ("null", T) ("arr", T) ("tuple", [T..])
# ("obj", [(name, T)])  -- ("null", T) fields may be left out (read as null). The four fields
# writers leave out rather than write as null (`agreement`, `seeds.version`, `host.cpu_features`,
# `origin`) are nullable fields like the others: a null there reads as absent.
def NUL(t):
    return ("null", t)


def OBJ(*fields):
    return ("obj", list(fields))


STEP = NUL("u64")
NUMN = NUL("num")
STRS = ("arr", "str")
DIFF = OBJ(("step", STEP), ("quantity", "str"), ("layer", NUL("str")), ("original", "str"),
           ("replayed", "str"))
AGREEMENT = OBJ(("identical_to", STEP), ("within_1e6_to", STEP), ("within_1pct_to", STEP),
                ("first_relative", NUMN),
                ("conclusions", ("arr", ("tuple", ["str", "str", "str"]))))
VERDICT = OBJ(("result", ("enum", ("exact", "close", "diverged"))), ("first", NUL(DIFF)),
              ("agreement", NUL(AGREEMENT)))
SEEDS = OBJ(("experiment", "u64"), ("backend", "u64"), ("streams", STRS), ("version", NUL("u64")))
CODE = OBJ(("crate_version", "str"), ("git_commit", NUL("str")), ("git_dirty", NUL("bool")),
           ("git_diff_hash", NUL("str")), ("cargo_lock_hash", "str"), ("rustc", "str"),
           ("burn", "str"), ("features", STRS), ("target", "str"), ("profile", "str"))
EXECUTION = OBJ(("backend", "str"), ("device", "str"), ("threads", "u64"))
HOST = OBJ(("os", "str"), ("arch", "str"), ("cpu", "str"), ("cpu_features", NUL(STRS)))
METRICS = OBJ(("steps_done", "u64"), ("steps_planned", "u64"), ("probes", "u64"),
              ("last_step", STEP), ("wall_s", "num"), ("train_loss", NUMN),
              ("train_accuracy", NUMN), ("test_loss", NUMN), ("test_accuracy", NUMN))
LAYER = OBJ(("name", "str"), ("delta_first", NUMN), ("delta_last", NUMN), ("grad_w_first", NUMN),
            ("grad_w_last", NUMN))
OBJECT = OBJ(("hash", "str"), ("bytes", "u64"), ("file_hash", NUL("str")))
ORIGIN = OBJ(("source", "str"), ("source_head", "str"), ("seq", "u64"), ("hash", "str"),
             ("merged", "str"), ("line", "str"))
ENTRY = OBJ(("format", "str"), ("seq", "u64"), ("kind", ("enum", ("run", "replay", "lesion"))),
            ("replay_of", NUL("str")), ("verdict", NUL(VERDICT)), ("lesion_of", NUL("str")),
            ("tags", STRS),
            ("started", "str"), ("ended", "str"), ("experiment", "str"), ("config_hash", "str"),
            ("config", "str"), ("seeds", SEEDS), ("code", CODE), ("execution", EXECUTION),
            ("host", HOST),
            ("status", ("enum", ("completed", "diverged", "interrupted", "failed"))),
            ("diverged_at", STEP), ("error", NUL("str")), ("metrics", METRICS),
            ("layers", ("arr", LAYER)), ("trace", OBJECT), ("weights", OBJECT),
            ("origin", NUL(ORIGIN)), ("prev", "str"), ("hash", "str"))

_TYPE_NAMES = {"str": "a string", "u64": "a non-negative 64-bit integer",
               "num": "a finite number", "bool": "a boolean"}


def _describe(t):
    if isinstance(t, str):
        return _TYPE_NAMES[t]
    kind = t[0]
    if kind == "null":
        return _describe(t[1]) + " or null"
    if kind == "enum":
        return "one of " + ", ".join(f'"{x}"' for x in t[1])
    if kind == "arr":
        return "an array"
    if kind == "tuple":
        return f"an array of {len(t[1])}"
    return "an object"


def conform(v, t, path):
    """Check v against type t; return the value with left-out nullable fields filled as null."""
    if isinstance(t, str):
        ok = ((t == "str" and isinstance(v, str))
              or (t == "u64" and is_int(v) and 0 <= v <= U64_MAX)
              or (t == "num" and is_num(v))
              or (t == "bool" and isinstance(v, bool)))
        if not ok:
            raise SchemaError(f"`{path}` must be {_describe(t)}, not {_json_text(v)}")
        return v
    kind = t[0]
    if kind == "null":
        return None if v is None else conform(v, t[1], path)
    if kind == "enum":
        if not (isinstance(v, str) and v in t[1]):
            raise SchemaError(f"`{path}` must be {_describe(t)}, not {_json_text(v)}")
        return v
    if kind == "arr":
        if not isinstance(v, list):
            raise SchemaError(f"`{path}` must be an array, not {_json_text(v)}")
        return [conform(x, t[1], f"{path}[{i}]") for i, x in enumerate(v)]
    if kind == "tuple":
        if not (isinstance(v, list) and len(v) == len(t[1])):
            raise SchemaError(f"`{path}` must be {_describe(t)}, not {_json_text(v)}")
        return [conform(x, tt, f"{path}[{i}]") for i, (x, tt) in enumerate(zip(v, t[1]))]
    # object
    if not isinstance(v, dict):
        raise SchemaError(f"`{path or 'the line'}` must be an object, not {_json_text(v)}")
    names = {f[0] for f in t[1]}
    unknown = [k for k in v if k not in names]
    if unknown:
        where = f" in `{path}`" if path else ""
        raise SchemaError(f"unknown field{'s' if len(unknown) > 1 else ''}{where}: "
                          + ", ".join(f"`{k}`" for k in unknown))
    out = {}
    for name, ft in t[1]:
        sub = f"{path}.{name}" if path else name
        if name in v:
            out[name] = conform(v[name], ft, sub)
        elif isinstance(ft, tuple) and ft[0] == "null":
            out[name] = None
        else:
            raise SchemaError(f"missing field `{sub}`")
    return out


def _json_text(v, limit=40):
    try:
        s = json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "…"


# ---------------------------------------------------------------------------
# Lines

def hash_field(line):
    """Step 1: (claimed hash or None, body or None)."""
    if not line.startswith(b"{") or len(line) < 76:
        return None, None
    m = HASH_TAIL.search(line, len(line) - 75)
    if not m:
        return None, None
    return m.group(1).decode("ascii"), line[:-75] + b"}"


def parse_entry(line):
    """Steps 1 and 2 on raw bytes. Returns (entry, claimed, problem)."""
    claimed, body = hash_field(line)
    if claimed is None:
        return None, None, "the line does not end with a well-formed `\"hash\"` field"
    actual = b3(body)
    if actual != claimed:
        return None, claimed, f"hash mismatch: the line claims {claimed}, its body hashes to {actual}"
    try:
        raw = strict_loads(line)
    except JsonError as e:
        return None, claimed, f"does not parse as an entry: {e}"
    try:
        entry = conform(raw, ENTRY, "")
    except SchemaError as e:
        return None, claimed, f"does not parse as an entry: {e}"
    return entry, claimed, None


def valid_stamp(s):
    m = STAMP.match(s)
    if not m:
        return False
    y, mo, d, h, mi, se = (int(x) for x in m.groups())
    if not (1 <= mo <= 12 and h <= 23 and mi <= 59 and se <= 59 and d >= 1):
        return False
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
    return d <= days


def lineage(entry, claimed):
    out = [claimed]
    e = entry
    while e is not None and e["origin"] is not None:
        out.append(e["origin"]["hash"])
        inner, _, problem = parse_entry(e["origin"]["line"].encode("utf-8"))
        e = inner if problem is None else None
    return out


# ---------------------------------------------------------------------------
# Comparison (claims, merged entries)

def same(a, b):
    if is_num(a) and is_num(b):
        if is_int(a) and is_int(b):
            return a == b
        try:
            x, y = float(a), float(b)
        except OverflowError:
            return False
        return abs(x - y) <= 4 * 2.0 ** -52 * max(abs(x), abs(y))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return False


# ---------------------------------------------------------------------------
# Objects and traces

class ObjectStore:
    def __init__(self, root):
        self.root = root
        self.results = {}  # (hash, file_hash) -> (problem or None, content or None)

    def check(self, label, obj, keep):
        # The file is read once per (hash, file_hash); each entry's `bytes` is compared.
        key = (obj["hash"], obj["file_hash"])
        cached = self.results.get(key)
        if cached is None or (keep and cached[0] is None and cached[2] is None):
            cached = self.results[key] = self._check(obj, keep)
        problem, length, content = cached
        if problem is None and length != obj["bytes"]:
            problem = f"{obj['hash']}: its content is {length} bytes, not {obj['bytes']}"
            content = None
        return (f"{label} object {problem}" if problem else None), content

    def _check(self, obj, keep):
        """(problem, content length, content if kept) of the object's file."""
        h, fh = obj["hash"], obj["file_hash"]
        if not HEX64.match(h):
            return f"hash {_json_text(h)} is not 64 lowercase hex digits", None, None
        path = os.path.join(self.root, "objects", h[:2], h + ".gz")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return f"{h} is missing (objects/{h[:2]}/{h}.gz)", None, None
        except OSError as e:
            return f"{h} cannot be read: {e.strerror or e}", None, None
        got = b3(data)
        if got != fh:
            return f"{h}: the file hashes to {got}, not the recorded file_hash {fh}", None, None
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            content = d.decompress(data) + d.flush()
        except zlib.error as e:
            return f"{h} does not decompress: {e}", None, None
        if not d.eof:
            return f"{h} does not decompress: the gzip stream is truncated", None, None
        if d.unused_data:
            return f"{h} is not one gzip member: {len(d.unused_data)} bytes follow it", None, None
        ch = b3(content)
        if ch != h:
            return f"{h}: its content hashes to {ch}", None, None
        return None, len(content), (content if keep else None)


_ENTRY_THREADS = object()  # placeholder: the trace header has no `threads`
STATUSES = ("completed", "diverged", "interrupted", "failed")


def _tr_int(v):
    # a trace integer reads as the entry's integers do: a non-negative JSON integer of 64 bits
    return is_int(v) and 0 <= v <= U64_MAX


def derive_claims(content):
    """The claims rederived from a trace; a string when the trace is not a valid trace."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"the trace is not a valid trace: not UTF-8 at byte {e.start}"
    records = []
    hints = (bool(BIG_EXPONENT.search(text) or LONG_DIGITS.search(text)),
             bool(SURROGATE_HINT.search(text)))
    for n, piece in enumerate(text.split("\n"), 1):
        if not piece:
            continue
        try:
            rec = loose_record(piece, hints)
        except JsonError as e:
            return f"the trace is not a valid trace: trace line {n} is not JSON ({e})"
        if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
            return f"the trace is not a valid trace: trace line {n} is not an object with a string `type`"
        records.append(rec)
    if len(records) < 2 or records[0]["type"] != "header" or records[-1]["type"] != "end":
        return "the trace is not a valid trace: it must start with a `header` record and end with an `end` record"
    for rec in records[1:-1]:
        if rec["type"] not in ("probe", "phase", "pretrain", "lesion", "paths"):
            return (f"the trace is not a valid trace: a `{rec['type']}` record between header and end "
                    "(only probe, phase, pretrain, lesion and paths may be there)")
    header, end = records[0], records[-1]
    probes = [r for r in records[1:-1] if r["type"] == "probe"]

    def s(rec, k, default=""):
        v = rec.get(k)
        return v if isinstance(v, str) else default

    def i(rec, k, default=None):
        v = rec.get(k)
        return v if _tr_int(v) else default

    def num(rec, k):
        if not isinstance(rec, dict):
            return None
        v = rec.get(k)
        return v if is_num(v) else None

    status = end.get("status")
    claims = {
        "experiment": s(header, "experiment"),
        "config_hash": s(header, "config_hash"),
        "seeds.experiment": i(header, "seed"),
        "execution": {"backend": s(header, "backend"), "device": s(header, "device"),
                      # no `threads` field: the entry's own; one of another type reads as 0
                      "threads": (i(header, "threads", 0) if "threads" in header else _ENTRY_THREADS)},
        "status": status if isinstance(status, str) and status in STATUSES else None,
        "diverged_at": i(end, "diverged_at"),
        "error": s(end, "error", None),
    }
    first = probes[0] if probes else None
    last = probes[-1] if probes else None
    tested = None
    for p in reversed(probes):
        if p.get("test") is not None:
            tested = p["test"]
            break
    claims["metrics"] = {
        "steps_done": i(end, "steps_done", 0),
        "steps_planned": i(header, "steps", 0),
        "probes": len(probes),
        "last_step": i(last, "step") if last is not None else None,
        "train_loss": num(last, "loss"),
        "train_accuracy": num(last, "accuracy"),
        "test_loss": num(tested, "loss"),
        "test_accuracy": num(tested, "accuracy"),
    }
    layers = []
    if probes:
        names = header.get("layers")
        names = names if isinstance(names, list) else []

        def item(p, idx):
            arr = p.get("layers")
            if isinstance(arr, list) and idx < len(arr):
                return arr[idx]
            return None

        for idx, name in enumerate(names):
            a, z = item(first, idx), item(last, idx)
            layers.append({"name": name if isinstance(name, str) else "",
                           "delta_first": num(a, "delta"), "delta_last": num(z, "delta"),
                           "grad_w_first": num(a, "grad_w"), "grad_w_last": num(z, "grad_w")})
    claims["layers"] = layers
    return claims


def claim_problems(entry, derived):
    if isinstance(derived, str):
        return [derived]
    m = dict(entry["metrics"])
    del m["wall_s"]
    execution = dict(derived["execution"])
    if execution["threads"] is _ENTRY_THREADS:
        execution["threads"] = entry["execution"]["threads"]
    pairs = [
        ("experiment", entry["experiment"], derived["experiment"]),
        ("config_hash", entry["config_hash"], derived["config_hash"]),
        ("seeds.experiment", entry["seeds"]["experiment"], derived["seeds.experiment"]),
        ("execution", entry["execution"], execution),
        ("status", entry["status"], derived["status"]),
        ("diverged_at", entry["diverged_at"], derived["diverged_at"]),
        ("error", entry["error"], derived["error"]),
        ("metrics", m, derived["metrics"]),
        ("layers", entry["layers"], derived["layers"]),
    ]
    out = []
    for name, claimed, traced in pairs:
        if not same(claimed, traced):
            detail = ""
            if isinstance(claimed, dict) and isinstance(traced, dict):
                keys = [k for k in claimed if k not in traced or not same(claimed[k], traced[k])]
                keys += [k for k in traced if k not in claimed]
                detail = " (" + ", ".join(f"{k}: {_json_text(claimed.get(k))} vs {_json_text(traced.get(k))}"
                                          for k in keys) + ")"
            elif isinstance(claimed, list) and isinstance(traced, list):
                detail = f" ({len(claimed)} layers claimed, {len(traced)} in the trace"
                if len(claimed) == len(traced):
                    bad = [str(k + 1) for k, (x, y) in enumerate(zip(claimed, traced)) if not same(x, y)]
                    detail += "; differing: layer " + ", ".join(bad)
                detail += ")"
            else:
                detail = f" ({_json_text(claimed)} claimed, {_json_text(traced)} in the trace)"
            out.append(f"claim `{name}` does not match the trace{detail}")
    return out


# ---------------------------------------------------------------------------
# Merged entries

MERGE_EXEMPT = {"seq", "prev", "hash", "origin"}


def merged_differences(outer, inner):
    diffs = []
    for k in sorted(set(outer) | set(inner), key=lambda k: _FIELD_ORDER.get(k, 99)):
        if k in MERGE_EXEMPT:
            continue
        a, b = outer.get(k, _MISSING), inner.get(k, _MISSING)
        if k in ("trace", "weights") and isinstance(a, dict) and isinstance(b, dict):
            for sub in ("hash", "bytes"):
                if not same(a[sub], b[sub]):
                    diffs.append(f"{k}.{sub}")
            continue
        if a is _MISSING or b is _MISSING:
            diffs.append(k)
        elif not same(a, b):
            diffs.append(k)
    return diffs


_MISSING = object()
_FIELD_ORDER = {f[0]: i for i, f in enumerate(ENTRY[1])}


def origin_problems(entry, depth=0):
    out = []
    o = entry["origin"]
    where = "origin" if depth == 0 else "origin" + ".line→origin" * depth
    claimed, body = hash_field(o["line"].encode("utf-8"))
    if claimed is None:
        return [f"`{where}.line` is not an entry line: it does not end with a well-formed `\"hash\"` field"]
    actual = b3(body)
    if actual != claimed:
        return [f"`{where}.line` claims hash {claimed} but its body hashes to {actual}"]
    inner, _, problem = parse_entry(o["line"].encode("utf-8"))
    if problem is not None:
        return [f"`{where}.line` {problem}"]
    if actual != o["hash"]:
        out.append(f"`{where}.line` hashes to {actual}, not `{where}.hash` {o['hash']}")
    if inner["seq"] != o["seq"]:
        out.append(f"`{where}.seq` is {o['seq']} but the embedded entry's seq is {inner['seq']}")
    if not valid_stamp(o["merged"]):
        out.append(f"`{where}.merged` {_json_text(o['merged'])} is not a UTC stamp YYYY-MM-DDTHH:MM:SSZ")
    diffs = merged_differences(entry, inner)
    if diffs:
        out.append(f"the merged entry differs from the embedded original (`{where}.line`) in: "
                   + ", ".join(diffs))
    for k in ("trace", "weights"):
        if (entry[k]["file_hash"] is None) != (inner[k]["file_hash"] is None):
            out.append(f"`{k}.file_hash` is null in one of the merged entry and its original (`{where}.line`) but not the other")
    if inner["origin"] is not None:
        out.extend(origin_problems(inner, depth + 1))
    return out


# ---------------------------------------------------------------------------
# The ledger

class Problem:
    __slots__ = ("line", "experiment", "what")

    def __init__(self, line, experiment, what):
        self.line, self.experiment, self.what = line, experiment, what

    def text(self):
        if self.line is None:
            return f"ledger: {self.what}"
        if self.experiment is None:
            return f"entry {self.line} (line {self.line}): {self.what}"
        # keep one problem to one output line whatever the experiment's name holds
        exp = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in self.experiment)
        return f"entry {self.line} ({exp}, line {self.line}): {self.what}"


def _shared_lock(root, wait_s=10.0):
    """Readers take a shared lock on `.lock` (when it exists; never created here), so a live
    append is not mistaken for a torn tail. Waits at most `wait_s`, then reads without it."""
    try:
        lock = open(os.path.join(root, ".lock"), "rb")
    except OSError:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return lock
            time.sleep(0.05)
        except OSError:
            return lock


def verify(root, head):
    problems = []
    ledger_problems = []
    entries_path = os.path.join(root, "entries.jsonl")
    lock = _shared_lock(root)
    try:
        with open(entries_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        # A ledger folder without an entries file is an empty ledger.
        data = b""
    except OSError as e:
        reason = e.strerror or str(e)
        return {"problems": [Problem(None, None, f"cannot read the entries file {entries_path}: {reason}")],
                "entries": 0, "objects": 0, "head": None}
    finally:
        if lock is not None:
            lock.close()

    pieces = data.split(b"\n")
    tail = pieces.pop()  # bytes after the last newline (empty when the file ends in one)
    store = ObjectStore(root)
    lineage_set = set()
    chain = ZERO_HASH
    last_hash = None
    for n, line in enumerate(pieces, 1):
        entry, claimed, problem = parse_entry(line)
        if problem is not None:
            problems.append(Problem(n, None, problem))
            # The head is the hash the last line claims, when its hash field is well formed.
            last_hash = claimed
            if claimed is not None:
                chain = claimed
            continue
        exp = entry["experiment"]
        here = []
        if entry["format"] != FORMAT:
            here.append(f"format is {_json_text(entry['format'])}, not \"{FORMAT}\"")
        if entry["seq"] != n:
            here.append(f"seq is {entry['seq']} on line {n}")
        if entry["prev"] != chain:
            here.append(f"prev is {entry['prev']}, not the previous line's hash {chain}")
        ch = b3(entry["config"].encode("utf-8"))
        if entry["config_hash"] != ch:
            here.append(f"config_hash is {entry['config_hash']} but the config hashes to {ch}")
        for k in ("started", "ended"):
            if not valid_stamp(entry[k]):
                here.append(f"`{k}` {_json_text(entry[k])} is not a UTC stamp YYYY-MM-DDTHH:MM:SSZ")
        kind, rof, verdict = entry["kind"], entry["replay_of"], entry["verdict"]
        lof = entry["lesion_of"]
        if kind == "run":
            if rof is not None or verdict is not None or lof is not None:
                here.append("kind is run but replay_of/verdict/lesion_of is not null")
        elif kind == "replay":
            if rof is None or verdict is None or lof is not None:
                here.append("kind is replay but replay_of/verdict is null or lesion_of is not")
            elif rof not in lineage_set:
                here.append(f"replay_of {rof} does not name an earlier entry")
        else:
            if rof is not None or verdict is not None or lof is None:
                here.append("kind is lesion but replay_of/verdict is not null or lesion_of is")
            elif lof not in lineage_set:
                here.append(f"lesion_of {lof} does not name an earlier entry")
        trace_content = None
        trace_ok = False
        if entry["trace"]["file_hash"] is None:
            here.append("trace.file_hash is null (the trace is always stored)")
        else:
            p, trace_content = store.check("trace", entry["trace"], keep=True)
            if p:
                here.append(p)
            else:
                trace_ok = True
        if entry["weights"]["file_hash"] is not None:
            p, _ = store.check("weights", entry["weights"], keep=False)
            if p:
                here.append(p)
        if trace_ok:
            here.extend(claim_problems(entry, store_claims(store, entry["trace"], trace_content)))
        if entry["origin"] is not None:
            here.extend(origin_problems(entry))
        for w in here:
            problems.append(Problem(n, exp, w))
        lineage_set.update(lineage(entry, claimed))
        chain = claimed
        last_hash = claimed

    count = len(pieces)
    if tail:
        problems.append(Problem(count + 1, None,
                                f"torn tail: {len(tail)} bytes without a newline after the last line "
                                "(an interrupted append; `gradlab ledger repair` moves them aside)"))
    if head is not None:
        h = head.strip().lower()
        if len(h) < 12 or not HEX.match(h):
            ledger_problems.append(Problem(None, None, f"{head!r} is not a head hash (give at least 12 hex digits)"))
        elif not any(x.startswith(h) for x in lineage_set):
            ledger_problems.append(Problem(None, None, f"the published head {h} is not in the ledger: "
                                           "entries were removed from the end or history was rewritten"))
    return {"problems": problems + ledger_problems, "entries": count,
            "objects": len(store.results), "head": last_hash}


_claims_cache = {}


def store_claims(store, obj, content):
    key = (obj["hash"], obj["file_hash"])
    if key not in _claims_cache:
        _claims_cache[key] = derive_claims(content)
    return _claims_cache[key]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ledger-verify.py",
                                 description="Verify a gradlab ledger from its README alone.")
    ap.add_argument("--ledger", metavar="DIR",
                    default=os.environ.get("GRADLAB_LEDGER") or "ledger",
                    help="ledger folder (default $GRADLAB_LEDGER, else ./ledger)")
    ap.add_argument("--head", metavar="HASH", help="a published head that must still be present")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass
    if not os.path.isdir(args.ledger):
        # As `gradlab ledger verify`: a missing ledger is an error, not an empty ledger.
        print(f"error: no ledger at {args.ledger}", file=sys.stderr)
        return 2
    r = verify(args.ledger, args.head)
    problems = r["problems"]
    ok = not problems
    if args.json:
        out = {"ok": ok, "entries": r["entries"], "objects": r["objects"], "head": r["head"],
               "problems": [{"line": p.line, "experiment": p.experiment, "what": p.what}
                            for p in problems]}
        print(json.dumps(out))
    elif ok:
        print(f"ok: {r['entries']} entries, {r['objects']} objects, every hash recomputed, chain intact")
        print(f"head {r['head'] if r['head'] is not None else '(empty ledger)'}")
    else:
        print(f"FAILED: {len(problems)} problem(s) in {r['entries']} entries")
        for p in problems:
            print(p.text())
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
