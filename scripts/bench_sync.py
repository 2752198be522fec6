"""Sync benchmarks; run through scripts/bench-sync. Prints a Markdown table; --write puts it
into docs/benchmarks.md between the bench:sync markers."""
import glob, gzip, json, os, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
FS, HUB, PROXY = (os.path.join(BIN, n) for n in ("fieldsync", "fieldsync-hub", "fieldsync-netlab-proxy"))
SEEDS = os.path.join(ROOT, "..", "shared", "seeds")
args = sys.argv[1:]
N = int(args[args.index("--records") + 1]) if "--records" in args else 100_000
W = tempfile.mkdtemp(prefix="fieldsync-bench-sync.")
procs = []
rows = []

def note(k, v):
    rows.append((k, v))
    print(f"| {k} | {v} |", flush=True)

def run(cmd, ns=False, check=True, env=None):
    if ns: cmd = ["ip", "netns", "exec", "fs-laptop"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r

def start(cmd, pattern, log):
    out = open(log, "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=out, text=True, bufsize=1)
    procs.append(p)
    line = p.stdout.readline()
    m = re.search(pattern, line)
    if not m: raise SystemExit(f"{cmd[0]} did not start: {line}")
    # keep draining stdout into a file
    sink = open(log + ".out", "w")
    import threading
    def drain():
        for l in p.stdout: sink.write(l); sink.flush()
    threading.Thread(target=drain, daemon=True).start()
    return p, m

def proxy_bytes(log):
    up = down = 0
    for l in open(log + ".out"):
        m = re.match(r"bytes \d+ (up|down) (\d+)", l)
        if m:
            if m.group(1) == "up": up += int(m.group(2))
            else: down += int(m.group(2))
    return up, down

def laptop(name, hub_db, url, scope, ns=False):
    db = os.path.join(W, name + ".sqlite")
    code = json.loads(run([HUB, "device", "add", "--db", hub_db, "--name", name, "--scope", scope, "--json"]).stdout)["code"]
    run([FS, "--db", db, "init", "--site", name, "--author", name])
    run([FS, "--db", db, "enroll", "--hub", url, "--code", code], ns=ns)
    return db

def bare_gzip(db, kinds=("visit", "dispute", "project")):
    """The gzip (level 6) of the bare record values: one JSON object of field values per line."""
    lines = []
    for k in kinds:
        for r in json.loads(run([FS, "--db", db, "record", "list", k, "--json"]).stdout):
            lines.append(json.dumps({f: v for f, v in r["fields"].items() if v is not None}, ensure_ascii=False))
    return len(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6)), len(lines)

last_peak_mb = [0.0]

def sync(db, url, ns=False):
    """Runs `fieldsync sync`; its peak memory is left in last_peak_mb: the high-water mark of its
    own address space (VmHWM), read every 20 ms while it runs. (ru_maxrss from wait4 would not
    do: Linux carries the forking process's peak across execve, and this script holds hundreds
    of MB of JSON by then.)"""
    cmd = [FS, "--db", db, "sync", "--json", "--hub", url, "--attempts", "20"]
    if ns: cmd = ["ip", "netns", "exec", "fs-laptop"] + cmd
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=err)
    peak = 0.0
    while p.poll() is None:
        peak = max(peak, hub_peak_mb(p.pid))
        time.sleep(0.02)
    dt = time.monotonic() - t
    last_peak_mb[0] = peak
    out.seek(0); err.seek(0)
    if p.returncode != 0: raise SystemExit(f"sync failed ({p.returncode}): {err.read().decode(errors='replace')}")
    return json.loads(out.read().decode()), dt

def hub_peak_mb(pid):
    """The high-water mark of a process's resident memory (VmHWM), in MB; 0 once it is gone."""
    try:
        for l in open(f"/proc/{pid}/status"):
            if l.startswith("VmHWM:"): return int(l.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

def day(db, village, cadre, seed):
    d = os.path.join(W, f"day-{seed}")
    run(["python3", os.path.join(ROOT, "scripts", "demo-day.py"), SEEDS, d, village, cadre, str(seed)])
    for k in ("visit", "dispute", "project"):
        run([FS, "--db", db, "record", "import", k, os.path.join(d, k + ".jsonl")])
    # and an afternoon of edits
    for r in json.loads(run([FS, "--db", db, "record", "list", "visit", "--json"]).stdout)[:6]:
        run([FS, "--db", db, "record", "edit", r["id"], "--json", '{"follow_up_done":true}'])
    for r in json.loads(run([FS, "--db", db, "record", "list", "dispute", "--json"]).stdout):
        run([FS, "--db", db, "record", "edit", r["id"], "--json", '{"status":"已化解","resolution":"双方达成和解"}'])

try:
    hub_db = os.path.join(W, "hub.sqlite")
    hub, m = start([HUB, "serve", "--create", "--db", hub_db, "--host", "0.0.0.0", "--port", "0", "--log-level", "error"], r":(\d+) ", os.path.join(W, "hub.log"))
    hub_port = int(m.group(1))
    direct = f"http://127.0.0.1:{hub_port}"
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; release build; hub on loopback with its SQLite store.\n")
    print("| measure | result |\n|---|---|")

    # A day's work, one laptop, over loopback through a byte-counting proxy.
    px, m = start([PROXY, "--upstream", f"127.0.0.1:{hub_port}"], r":(\d+) →", os.path.join(W, "p1.log"))
    via = f"http://127.0.0.1:{m.group(1)}"
    a = laptop("day-a", hub_db, direct, "520221105201")
    day(a, "520221105201", "王芳", 11)
    rep, dt = sync(a, via)
    time.sleep(0.3)
    up, down = proxy_bytes(os.path.join(W, "p1.log"))
    base, nrec = bare_gzip(a)
    changes = rep["pushed"]
    note("day's work: records / changes pushed", f"{nrec} records, {changes} changes")
    note("day's work push: wall time, changes per second", f"{dt:.2f} s, {changes / dt:.0f} changes/s")
    note("day's work push: bytes on the wire (HTTP, both ways) / gzip of bare values", f"{up + down} B / {base} B = {(up + down) / base:.2f}×")
    note("day's work push: request bytes only / gzip of bare values", f"{up} B / {base} B = {up / base:.2f}×")
    b = laptop("day-b", hub_db, direct, "520221105201")
    before = proxy_bytes(os.path.join(W, "p1.log"))
    rep, dt = sync(b, via)
    time.sleep(0.3)
    after = proxy_bytes(os.path.join(W, "p1.log"))
    pulled = (after[0] - before[0]) + (after[1] - before[1])
    note("day's work pulled by a second laptop: bytes on the wire / gzip of bare values", f"{pulled} B / {base} B = {pulled / base:.2f}×")

    # 100,000 records: one laptop pushes them, a township laptop pulls them (a snapshot).
    rnd = __import__("random").Random(7)
    sentences = []
    for f in sorted(glob.glob(os.path.join(SEEDS, "*.txt"))):
        sentences += [s.strip() for s in re.split(r"(?<=[。！？])", open(f, encoding="utf-8").read()) if 20 <= len(s.strip()) <= 160]
    src = os.path.join(W, "big.jsonl")
    with open(src, "w", encoding="utf-8") as out:
        for n in range(N):
            out.write(json.dumps({"village": "5202211053%02d" % (n % 40 + 1), "household_head": "户主%d" % n, "cadre_name": "王芳",
                                  "visit_date": "2026-11-%02d" % (n % 28 + 1), "visit_kind": "入户走访", "topics": ["政策宣传", "就业"],
                                  "notes": rnd.choice(sentences), "follow_up_done": n % 3 == 0}, ensure_ascii=False) + "\n")
    big = laptop("big-a", hub_db, direct, "520221105")
    run([FS, "--db", big, "record", "import", "visit", src])
    before = proxy_bytes(os.path.join(W, "p1.log"))
    rep, dt = sync(big, via)
    time.sleep(0.3)
    after = proxy_bytes(os.path.join(W, "p1.log"))
    base, nrec = bare_gzip(big, ("visit",))
    wire = (after[0] - before[0]) + (after[1] - before[1])
    note(f"{nrec} records push: wall time, changes per second", f"{dt:.1f} s, {rep['pushed'] / dt:.0f} changes/s ({rep['requests']} requests)")
    note(f"{nrec} records push: bytes on the wire / gzip of bare values", f"{wire} B / {base} B = {wire / base:.2f}×")
    note(f"{nrec} records push: peak memory of the laptop's `fieldsync sync`", f"{last_peak_mb[0]:.0f} MB")
    pull = laptop("big-b", hub_db, direct, "520221105")
    before = proxy_bytes(os.path.join(W, "p1.log"))
    rep, dt = sync(pull, via)
    time.sleep(0.3)
    after = proxy_bytes(os.path.join(W, "p1.log"))
    wire = (after[0] - before[0]) + (after[1] - before[1])
    got = rep["pulled"]
    note(f"{nrec} records pulled by a new laptop (snapshot): wall time, changes per second", f"{dt:.1f} s, {got / dt:.0f} changes/s")
    note(f"{nrec} records pulled: bytes on the wire / gzip of bare values", f"{wire} B / {base} B = {wire / base:.2f}×")
    note(f"{nrec} records pulled: peak memory of the laptop's `fieldsync sync`; of the hub process so far", f"{last_peak_mb[0]:.0f} MB; {hub_peak_mb(hub.pid):.0f} MB")

    # A day's work over a shaped link.
    if os.geteuid() == 0:
        delay = os.environ.get("NETLAB_DELAY_MS", "300")
        run([os.path.join(ROOT, "scripts", "netlab"), "up"])
        try:
            px2, m = start([PROXY, "--listen", "10.77.0.1:0", "--upstream", f"127.0.0.1:{hub_port}", "--delay-ms", delay],
                           r":(\d+) →", os.path.join(W, "p2.log"))
            shaped = f"http://10.77.0.1:{m.group(1)}"
            # Random loss makes one sync's time vary by 2× and more (TCP's retransmission
            # timeouts): five laptops, each a day's work and its first sync, and the median.
            runs = []
            for n in range(5):
                s = laptop(f"shaped{n}", hub_db, shaped, "520221105201", ns=True)
                day(s, "520221105201", "李明", 12 + n)
                before = proxy_bytes(os.path.join(W, "p2.log"))
                rep, dt = sync(s, shaped, ns=True)
                # The proxy counts a connection's bytes when it closes: the sync's one connection
                # closes when the laptop's process ends, and its FIN crosses the lossy link too.
                after, stable, waited = before, 0, 0.0
                while waited < 30 and stable < 2:
                    time.sleep(0.5); waited += 0.5
                    now = proxy_bytes(os.path.join(W, "p2.log"))
                    stable = stable + 1 if now != before and now == after else 0
                    after = now
                if after == before: raise SystemExit("the proxy never counted the shaped sync's bytes")
                wire = (after[0] - before[0]) + (after[1] - before[1])
                runs.append((dt / (wire * 8 / 64000), dt, wire, rep))
            runs.sort(key=lambda r: r[0])
            ratio, dt, wire, rep = runs[len(runs) // 2]
            minimum = wire * 8 / 64000
            note(f"shaped link (64 kbit/s each way, 10% loss each way, +{delay} ms each way): day's work sync, median of 5",
                 f"{rep['pushed']} changes up, {rep['pulled']} down, {wire} B, {dt:.1f} s; physical minimum {minimum:.1f} s; ratio {ratio:.1f}× "
                 f"(all five: {', '.join(f'{r[0]:.1f}×' for r in runs)}; {rep['requests']} requests on one connection, {rep['retries']} retries)")
        finally:
            run([os.path.join(ROOT, "scripts", "netlab"), "down"], check=False)
    else:
        note("shaped link", "skipped (needs root for ip netns, tc, nft)")
finally:
    for p in procs:
        try: p.send_signal(signal.SIGKILL)
        except Exception: pass
    if "--keep" not in args: shutil.rmtree(W, ignore_errors=True)

if "--write" in args:
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    text = f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, release build.\n\n| measure | result |\n|---|---|\n{table}"
    p = os.path.join(ROOT, "docs", "benchmarks.md")
    doc = open(p, encoding="utf-8").read()
    doc = re.sub(r"(<!-- bench:sync:start -->\n).*?(\n<!-- bench:sync:end -->)", lambda m: m.group(1) + text + m.group(2), doc, flags=re.S)
    open(p, "w", encoding="utf-8").write(doc)
    print("wrote", p)
