#!/usr/bin/env python3
"""Writes Protocol/vectors/origin/*.json, the origin test vectors of changeset.md §7.6.

Written from the prose of Protocol/changeset.md (§2.3 canonical form, §5 bundles, §7 origin),
not from FieldSync's sources, so that the vectors are an independent statement of the rules.
Everything is deterministic: fixed Ed25519 seeds, and Ed25519 signatures are deterministic
(RFC 8032), so running this again rewrites the same bytes.

    python3 scripts/make-origin-vectors.py           # (re)writes Protocol/vectors/origin/
    python3 scripts/make-origin-vectors.py --check   # exits 1 when a file would change

Format of one vector (a JSON object):

  name, description  what the case shows and why each verdict follows from the prose.
  keys     {"a": SEED, …}: each key's 32-byte Ed25519 seed, 64 lowercase hex digits.
  publicKeys {"a": BASE64, …}: each key's 32-byte public key (RFC 4648 §4 base64, padded).
  sites    {"a": SITE, …}: the site id derived from each public key (§7.1): the first 8 bytes,
           big-endian, of SHA-256("fieldsync-site-v1" ‖ public key), as 16 lowercase hex digits.
  hub      the receiver's hub as it learnt it at enrolment (§7.3): {"site": SITE, "key": NAME}
           (NAME a key of `keys`; the hub's site need not be derived from its key: hubs made
           before version 2 keep random ids), or null for a receiver enrolled with no hub.
  changes  the changes as they appear in the bundle, as JSON objects, each valid per
           schemas/change.schema.json and schema.json.
  texts    for each change, its canonical form (§2.3) as a string: the exact text of its
           change line in the bundle, and the text that is hashed.
  digests  for each change, SHA-256 of the UTF-8 bytes of its text, 64 lowercase hex digits.
  lines    the bundle body between header and trailer, in order: {"manifest": MANIFEST}
           (a manifest line, §5, §7.2, exactly as it is written in the bundle) or
           {"change": INDEX} (the change line `texts[INDEX]`).
  signedBy for each line, the name of the key whose private half made the manifest's
           signature, or null for change lines (informative: the manifest's `key` field and
           `signer` may name others).
  expect   for each change, "proved" (the receiver merges it) or "setAside" (§2.2, §7.4).

A receiver runs a vector by writing a bundle: a version 2 header (§5), `lines` (manifest lines
as given, change lines as `texts`), and the trailer {"end":true,"changes":N} with N the number
of change lines; then, in a fresh replica that trusts `hub` (when not null) and whose own site
is none of `sites`, importing it. The changes marked "proved" are merged, the others set aside.
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Protocol", "vectors", "origin")
SCHEMA = json.load(open(os.path.join(ROOT, "Protocol", "schema.json"), encoding="utf-8"))

# --- canonical form (changeset.md §2.3) --------------------------------------------------------

FIELD_ORDER = {k["kind"]: [f["name"] for f in k["fields"]] for k in SCHEMA["kinds"]}
CHOICES = {(k["kind"], f["name"]): f["values"] for k in SCHEMA["kinds"] for f in k["fields"] if f["type"] == "choices"}


def esc(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"': out.append('\\"')
        elif ch == "\\": out.append("\\\\")
        elif ch == "\n": out.append("\\n")
        elif ch == "\r": out.append("\\r")
        elif ch == "\t": out.append("\\t")
        elif o < 0x20: out.append("\\u%04x" % o)
        else: out.append(ch)
    out.append('"')
    return "".join(out)


def value_text(v):
    if v is None: return "null"
    if v is True: return "true"
    if v is False: return "false"
    if isinstance(v, int): return str(v)
    if isinstance(v, str): return esc(v)
    if isinstance(v, list): return "[" + ",".join(value_text(x) for x in v) + "]"
    raise ValueError(f"no canonical form for {v!r}")


def vector_text(vec):
    return "{" + ",".join(esc(s) + ":" + str(vec[s]) for s in sorted(vec)) + "}"


def field_order(kind, names):
    order = FIELD_ORDER[kind]
    unknown = [n for n in names if n != "_deleted" and n not in order]
    if unknown: raise ValueError(f"unknown fields {unknown} for {kind}")
    return [n for n in order if n in names] + (["_deleted"] if "_deleted" in names else [])


def canonical(c):
    kind = c["kind"]
    parts = [esc(k) + ":" + value_text(c[k]) for k in ("id", "kind", "row", "hlc", "author", "schema")]
    fields = []
    for name in field_order(kind, c["fields"]):
        w = c["fields"][name]
        v = w["value"]
        if (kind, name) in CHOICES and isinstance(v, list):
            v = [x for x in CHOICES[(kind, name)] if x in v]
        t = esc("value") + ":" + value_text(v)
        if w.get("seen"): t += "," + esc("seen") + ":" + vector_text(w["seen"])
        fields.append(esc(name) + ":{" + t + "}")
    parts.append(esc("fields") + ":{" + ",".join(fields) + "}")
    rs = {k: v for k, v in (c.get("rowSeen") or {}).items() if v}
    if rs:
        parts.append(esc("rowSeen") + ":{" + ",".join(esc(n) + ":" + vector_text(rs[n]) for n in field_order(kind, rs)) + "}")
    if "note" in c: parts.append(esc("note") + ":" + esc(c["note"]))
    if "resolves" in c: parts.append(esc("resolves") + ":" + value_text(c["resolves"]))
    return "{" + ",".join(parts) + "}"


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).digest()


# --- keys, site ids, manifests (changeset.md §7.1, §7.2) ----------------------------------------

def b64(b):
    return base64.b64encode(b).decode("ascii")


def seed_for(label):
    # Fixed seeds; written out in the vectors as hex, so nobody needs to repeat this step.
    return hashlib.sha256(b"fieldsync origin vector seed " + label.encode()).digest()


def public_key(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def site_of(pub):
    s = hashlib.sha256(b"fieldsync-site-v1" + pub).digest()[:8].hex()
    assert s != "0" * 16
    return s


def manifest_message(signer_hex, digests_bytes):
    return b"fieldsync-manifest-v1\n" + signer_hex.encode("ascii") + b"\n" + hashlib.sha256(digests_bytes).digest()


def manifest(seed, signer_hex, digest_list, key_pub=None):
    """A manifest signed with `seed`'s private key on behalf of `signer_hex`, naming `key_pub`
    (default: the signing key's own public key) as its key."""
    ds = b"".join(digest_list)
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(manifest_message(signer_hex, ds))
    return {"signer": signer_hex, "key": b64(key_pub if key_pub is not None else public_key(seed)),
            "digests": b64(ds), "sig": b64(sig)}


# --- the cases -----------------------------------------------------------------------------------

NAMES = ["a", "b", "c", "h"]
SEEDS = {n: seed_for(n) for n in NAMES}
PUBS = {n: public_key(SEEDS[n]) for n in NAMES}
SITES = {n: site_of(PUBS[n]) for n in NAMES}
A, B, C, H = SITES["a"], SITES["b"], SITES["c"], SITES["h"]
# A hub made before version 2 keeps its random id: not derived from its key (§7.1).
LEGACY_HUB = "5a17e0c3b9d24f86"
assert LEGACY_HUB not in SITES.values()
# The id a hub restored from a backup takes (random, like a legacy one), keeping its key.
RESTORED_HUB = "c0ffee5e7ab1e042"
assert RESTORED_HUB not in SITES.values()

VILLAGE = "520221105201"
ROW1 = VILLAGE + "-019aa9f1c2d34e5f8a7b6c5d4e3f2a01"
ROW2 = VILLAGE + "-019aa9f1c2d34e5f8a7b6c5d4e3f2a02"
ROW3 = VILLAGE + "-019aa9f1c2d34e5f8a7b6c5d4e3f2a03"


def create(site, counter, row, hlc, author, parties, summary, status="受理"):
    return {"id": f"{site}:{counter}", "kind": "dispute", "row": row, "hlc": hlc, "author": author, "schema": 1,
            "fields": {"village": {"value": VILLAGE}, "category": {"value": "邻里纠纷"}, "parties": {"value": parties},
                       "summary": {"value": summary}, "reported_on": {"value": "2026-11-20"}, "status": {"value": status}}}


def edit(site, counter, row, hlc, author, fields, note=None):
    c = {"id": f"{site}:{counter}", "kind": "dispute", "row": row, "hlc": hlc, "author": author, "schema": 1, "fields": fields}
    if note is not None: c["note"] = note
    return c


# Changes of site A (key a): a creation whose summary needs every kind of escape (§2.3), an edit
# with a note, and a delete with rowSeen.
A1 = create(A, 1, ROW1, "1763784000000-0", "王芳", "张三与李四",
            "第一行\n第二行\t\"引号\" 反斜杠\\ 退格\b 换页\f 单元\x1f 删除\x7f é 行分隔\u2028 😀")
A2 = edit(A, 2, ROW1, "1763784060000-0", "王芳",
          {"status": {"value": "调解中", "seen": {A: 1}}, "mediator_name": {"value": "李明"}}, note="已安排村调委会调解")
A3 = {"id": f"{A}:3", "kind": "dispute", "row": ROW1, "hlc": "1763784120000-1", "author": "王芳", "schema": 1,
      "fields": {"_deleted": {"value": True}},
      "rowSeen": {"status": {A: 2}, "village": {A: 1}, "mediator_name": {A: 2}, "category": {A: 1},
                  "parties": {A: 1}, "summary": {A: 1}, "reported_on": {A: 1}}}
# Site B (key b): a record of its own, and an edit of A's record that had seen A's edit and its own work.
B1 = create(B, 1, ROW2, "1763784200000-0", "李强", "王五与赵六", "灌溉用水分配争议。")
B2 = edit(B, 2, ROW1, "1763784260000-0", "李强",
          {"status": {"value": "已化解", "seen": {B: 1, A: 2}}, "resolved_on": {"value": "2026-11-22"}})
# Site C (key c) and the hub's own site.
C1 = create(C, 1, ROW3, "1763784300000-0", "陈静", "钱七与孙八", "山林边界争议。")


def altered(c, field, value):
    d = json.loads(json.dumps(c))
    d["fields"][field]["value"] = value
    return d


def flip_sig(m):
    sig = bytearray(base64.b64decode(m["sig"]))
    sig[10] ^= 0x01
    return dict(m, sig=b64(bytes(sig)))


def case(name, description, changes, lines, expect, hub=None, keys=None):
    """lines: ("m", seed name, manifest) or ("c", index) or ("c", index, exact line text)."""
    texts = [canonical(c) for c in changes]
    used = keys or sorted({n for n in NAMES if any(SITES[n] in json.dumps(x) for x in changes)
                           or any(l[0] == "m" and l[1] == n for l in lines)
                           or (hub is not None and hub["key"] == n)})
    out_lines, signed_by = [], []
    for l in lines:
        if l[0] == "m":
            out_lines.append({"manifest": l[2]}); signed_by.append(l[1])
        else:
            out_lines.append({"change": l[1]}); signed_by.append(None)
    return name, {
        "name": name.split("-", 1)[1].replace("-", " "),
        "description": description,
        "keys": {n: SEEDS[n].hex() for n in used},
        "publicKeys": {n: b64(PUBS[n]) for n in used},
        "sites": {n: SITES[n] for n in used},
        "hub": hub,
        "changes": changes,
        "texts": texts,
        "digests": [digest(t).hex() for t in texts],
        "lines": out_lines,
        "signedBy": signed_by,
        "expect": expect,
    }


def D(c):
    return digest(canonical(c))


def cases():
    out = []
    out.append(case(
        "01-own-changes-signed-by-their-site",
        "Site a (its id derived from key a, §7.1) signs one manifest listing the digests of its three changes "
        "(a creation whose summary needs every escape of §2.3, an edit with a note, a delete with rowSeen). The signer's "
        "id is derived from the manifest's key and the signature holds, so the manifest vouches for the signer's own "
        "changes (§7.3): all three are proved.",
        [A1, A2, A3],
        [("m", "a", manifest(SEEDS["a"], A, [D(A1), D(A2), D(A3)])), ("c", 0), ("c", 1), ("c", 2)],
        ["proved", "proved", "proved"]))

    a2_changed = altered(A2, "status", "已化解")
    out.append(case(
        "02-change-altered-after-signing",
        "Site a signed the digests of a:1 and of a:2 with status 调解中; the bundle carries a:2 with status 已化解. "
        "The digest of the altered change's canonical form is not in the manifest, so nothing proves it: a:1 is proved, "
        "the altered a:2 is set aside (§7.4).",
        [A1, a2_changed],
        [("m", "a", manifest(SEEDS["a"], A, [D(A1), D(A2)])), ("c", 0), ("c", 1)],
        ["proved", "setAside"]))

    out.append(case(
        "03-key-does-not-derive-signer",
        "Key a signs a manifest on behalf of signer b (the manifest's key is a's public key, its signer b's id) listing "
        "b:1. The signature holds for that key and signer, but b's id is not derived from key a, so the manifest vouches "
        "for nothing (§7.3): b:1 is set aside.",
        [B1],
        [("m", "a", manifest(SEEDS["a"], B, [D(B1)])), ("c", 0)],
        ["setAside"], keys=["a", "b"]))

    out.append(case(
        "04-site-vouches-only-for-its-own-changes",
        "Site a signs a manifest listing a:1 and b:1 (b's own creation, relayed by a). A site's manifest vouches only "
        "for changes whose id names the signer (§7.3): a:1 is proved, b:1 is set aside although its digest is listed.",
        [A1, B1],
        [("m", "a", manifest(SEEDS["a"], A, [D(A1), D(B1)])), ("c", 0), ("c", 1)],
        ["proved", "setAside"]))

    hub_lines = [("m", "h", manifest(SEEDS["h"], LEGACY_HUB, [D(A1), D(B1), D(B2)])), ("c", 0), ("c", 1), ("c", 2)]
    out.append(case(
        "05-receivers-hub-vouches-for-any-change",
        f"The receiver is enrolled with a hub whose site is {LEGACY_HUB} (a hub made before version 2: its id is not "
        "derived from its key) and whose key is h, as the hub told it. A manifest signed by key h for signer "
        f"{LEGACY_HUB} lists a:1, b:1 and b:2: the receiver's own hub vouches for any change (§7.3), so all three are proved.",
        [A1, B1, B2], hub_lines, ["proved", "proved", "proved"],
        hub={"site": LEGACY_HUB, "key": "h"}))

    out.append(case(
        "06-hub-manifest-without-hub-anchor",
        "The same bundle as 05-receivers-hub-vouches-for-any-change, read by a receiver enrolled with no hub. A \"hub\" "
        "the receiver is not enrolled with proves nothing, and the signer's id is not derived from its key (§7.3): all "
        "three changes are set aside.",
        [A1, B1, B2], hub_lines, ["setAside", "setAside", "setAside"], hub=None, keys=["a", "b", "h"]))

    out.append(case(
        "07-hub-anchor-is-site-and-key",
        "The receiver's hub is site h with key h (a version 2 hub, its id derived from its key). Group 1: a manifest "
        "signed by key c on behalf of the hub's site lists c:1 and b:1: the signer is the hub's but the key is not the "
        "one the receiver learnt, and the signer's id is not derived from key c, so it vouches for nothing. Group 2: "
        "a manifest by the hub's key for the hub's site lists a:1: proved. So c:1 and b:1 are set aside, a:1 is proved.",
        [C1, B1, A1],
        [("m", "c", manifest(SEEDS["c"], H, [D(C1), D(B1)])), ("c", 0), ("c", 1),
         ("m", "h", manifest(SEEDS["h"], H, [D(A1)])), ("c", 2)],
        ["setAside", "setAside", "proved"], hub={"site": H, "key": "h"}, keys=["a", "b", "c", "h"]))

    out.append(case(
        "08-change-under-no-manifest",
        "b:1 comes first, before any manifest line: no manifest line precedes it, so nothing proves it (§5, §7.4) and it "
        "is set aside. Then a manifest by site a and a:1, proved.",
        [B1, A1],
        [("c", 0), ("m", "a", manifest(SEEDS["a"], A, [D(A1)])), ("c", 1)],
        ["setAside", "proved"]))

    out.append(case(
        "09-proved-only-by-the-manifest-line-before-it",
        "Manifest 1 by site a lists a:1 and a:2; manifest 2 by site a lists a:3. The lines are manifest 1, a:1, "
        "manifest 2, a:2, a:3. A change line is proved only by the manifest line before it (§5): a:2 follows manifest 2, "
        "which does not list it, so a:2 is set aside although manifest 1 lists it; a:1 and a:3 are proved.",
        [A1, A2, A3],
        [("m", "a", manifest(SEEDS["a"], A, [D(A1), D(A2)])), ("c", 0),
         ("m", "a", manifest(SEEDS["a"], A, [D(A3)])), ("c", 1), ("c", 2)],
        ["proved", "setAside", "proved"]))

    good = manifest(SEEDS["b"], B, [D(B1), D(B2)])
    padded_digests = b64(base64.b64decode(good["digests"]) + D(C1))
    out.append(case(
        "10-signature-does-not-hold",
        "Group 1: site b's manifest for b:1 and b:2 with one bit of its signature flipped. Group 2: site c's manifest "
        "for c:1 with b:1's digest appended to its digests after signing. Neither signature holds (§7.2: the signature "
        "covers the SHA-256 of all the digests), so neither manifest vouches for anything: all three are set aside.",
        [B1, B2, C1],
        [("m", "b", flip_sig(good)), ("c", 0), ("c", 1),
         ("m", "c", dict(manifest(SEEDS["c"], C, [D(C1)]), digests=b64(D(C1) + D(B1)))), ("c", 2)],
        ["setAside", "setAside", "setAside"], keys=["b", "c"]))

    out.append(case(
        "11-digest-of-the-canonical-form",
        "Site a signs a manifest whose first digest is the SHA-256 of a non-canonical encoding of a:1 (keys in "
        "another order, non-ASCII escaped as \\uXXXX, as a generic JSON writer may produce) and whose second is a:2's "
        "canonical digest. Digests are of the canonical form (§2.3, §7.2): a:1 is set aside, a:2 is proved.",
        [A1, A2],
        [("m", "a", manifest(SEEDS["a"], A, [hashlib.sha256(json.dumps(A1, sort_keys=True).encode()).digest(), D(A2)])),
         ("c", 0), ("c", 1)],
        ["setAside", "proved"]))

    out.append(case(
        "12-restored-hub-keeps-its-key-under-a-new-id",
        f"The receiver's hub was restored from a backup and took a new id, {RESTORED_HUB}, keeping its key h (sync.md §2, "
        f"§7.1); the receiver knows the new id. Group 1: a manifest by key h for the hub's former id {LEGACY_HUB} (what the "
        "hub signed before the restore) lists a:1 and b:1: the key is the receiver's hub's, whatever id it signs as (§7.3), "
        "so both are proved. Group 2: a manifest by key c for the hub's new id lists c:1: the key is not the hub's and "
        "the id is not derived from key c, so c:1 is set aside.",
        [A1, B1, C1],
        [("m", "h", manifest(SEEDS["h"], LEGACY_HUB, [D(A1), D(B1)])), ("c", 0), ("c", 1),
         ("m", "c", manifest(SEEDS["c"], RESTORED_HUB, [D(C1)])), ("c", 2)],
        ["proved", "proved", "setAside"], hub={"site": RESTORED_HUB, "key": "h"}, keys=["a", "b", "c", "h"]))
    return out


def render(doc):
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    wanted = {}
    for name, doc in cases():
        # Every change text must read back as the change, and be its own canonical form.
        for c, t in zip(doc["changes"], doc["texts"]):
            assert json.loads(t) == c and canonical(json.loads(t)) == t
        wanted[name + ".json"] = render(doc)
    stale = []
    for f, text in wanted.items():
        p = os.path.join(OUT, f)
        old = open(p, encoding="utf-8").read() if os.path.exists(p) else None
        if old != text:
            stale.append(f)
            if not check:
                with open(p, "w", encoding="utf-8") as fh: fh.write(text)
    extra = sorted(f for f in os.listdir(OUT) if f.endswith(".json") and f not in wanted)
    if check:
        if stale or extra:
            print("make-origin-vectors: out of date: " + ", ".join(stale + extra), file=sys.stderr)
            sys.exit(1)
        print(f"make-origin-vectors: {len(wanted)} vectors up to date")
    else:
        for f in extra: os.remove(os.path.join(OUT, f))
        print(f"make-origin-vectors: wrote {len(stale)} of {len(wanted)} vectors to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
