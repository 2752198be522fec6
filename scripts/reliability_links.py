"""Bad links (issue 5, item 3); run through scripts/reliability-links.

Three parts, each against a real hub process with its SQLite store and real `fieldsync sync`
processes (libcurl):
  cuts     the in-repo proxy cuts connections at random byte offsets, both directions, until at
           least --cuts cuts have happened; laptops push and pull through it.
  vanish   the hub is SIGKILLed while a sync is in flight (mid-request or mid-response) and
           restarted on the same port, --kills times.
  shaped   (root only) a laptop in its own network namespace: tbf 64 kbit/s each way, nftables
           10% loss each way, the proxy adding 300 ms each way and cutting at random offsets.

After every `fieldsync sync` it checks:
  - success is never reported for a failed exchange: exit 0 ⇒ every change the laptop holds is in
    the hub's store, nothing waits to be pushed, and the laptop holds every change in its scope;
  - a failed exchange says so (exit status 75 and a message on stderr), and a later sync
    completes once the link allows;
  - re-sending is bounded by the batch in flight: changes the hub already had (pushedDuplicates)
    ≤ push batch size × (interrupted push requests), counted from the proxy's cut log;
  - no change is stored twice at the hub or the laptop, and the record tables match.
Prints one line per part and a summary; exits non-zero on any violation.
"""
import fcntl, json, os, random, re, signal, socket, sqlite3, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
def opt(name, default):
    return type(default)(args[args.index(name) + 1]) if name in args else default
BIN = opt("--bin", os.path.join(ROOT, ".build", "debug"))
FS, HUB, PROXY = (os.path.join(BIN, n) for n in ("fieldsync", "fieldsync-hub", "fieldsync-netlab-proxy"))
SEED = opt("--seed", random.randrange(1 << 30))
CUTS = opt("--cuts", 100)
KILLS = opt("--kills", 20)
PARTS = opt("--parts", "cuts,vanish,shaped").split(",")
PUSH_BATCH = 500  # SyncOptions.pushBatch
W = tempfile.mkdtemp(prefix="fieldsync-links.")
rng = random.Random(SEED)
procs = []
violations = []
summary = []
print(f"reliability-links: seed {SEED} (rerun: scripts/reliability-links --seed {SEED}), work dir {W}", flush=True)

def fail(msg):
    violations.append(msg)
    print("VIOLATION:", msg, flush=True)

def run(cmd, ns=False, check=True, timeout=600):
    if ns: cmd = ["ip", "netns", "exec", "fs-laptop"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r

class Proc:
    """A long-running process whose stdout lines are collected."""
    def __init__(self, cmd, pattern, name):
        self.lines = []
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(W, name + ".err"), "w"), text=True, bufsize=1)
        procs.append(self.p)
        first = self.p.stdout.readline()
        self.m = re.search(pattern, first)
        if not self.m: raise SystemExit(f"{name} did not start: {first!r}")
        threading.Thread(target=self._drain, daemon=True).start()
    def _drain(self):
        for l in self.p.stdout: self.lines.append(l)
    def kill(self):
        try: self.p.send_signal(signal.SIGKILL); self.p.wait()
        except Exception: pass

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start_hub(db, port, host="127.0.0.1"):
    return Proc([HUB, "serve", "--create", "--db", db, "--host", host, "--port", str(port), "--log-level", "error"], r":(\d+) ", "hub")

def start_proxy(upstream_port, extra, listen="127.0.0.1:0"):
    return Proc([PROXY, "--listen", listen, "--upstream", f"127.0.0.1:{upstream_port}"] + extra, r":(\d+) →", "proxy")

SCOPE = {}  # laptop file → its scope (division-code prefix)

def laptop(name, hub_db, url, scope, ns=False):
    db = os.path.join(W, name + ".sqlite")
    SCOPE[db] = scope
    code = json.loads(run([HUB, "device", "add", "--db", hub_db, "--name", name, "--scope", scope, "--json"]).stdout)["code"]
    run([FS, "--db", db, "init", "--site", name, "--author", name])
    run([FS, "--db", db, "enroll", "--hub", url, "--code", code], ns=ns)
    return db

counter = [0]
def edit(db, village, n):
    """n new visit records and a few edits of existing ones."""
    counter[0] += 1
    src = os.path.join(W, f"batch-{counter[0]}.jsonl")
    with open(src, "w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps({"village": village, "household_head": f"户主{counter[0]}-{i}", "cadre_name": "王芳",
                                  "visit_date": "2026-11-%02d" % (i % 28 + 1), "visit_kind": "入户走访", "topics": ["政策宣传"],
                                  "notes": "走访记录：" + "群众反映通组路需要硬化，已记录并上报乡镇。" * rng.randint(1, 12) + "🌾",
                                  "follow_up_done": i % 2 == 0}, ensure_ascii=False) + "\n")
    run([FS, "--db", db, "record", "import", "visit", src])
    ids = [r["id"] for r in json.loads(run([FS, "--db", db, "record", "list", "visit", "--json"]).stdout)]
    for rid in rng.sample(ids, min(5, len(ids))):
        run([FS, "--db", db, "record", "edit", rid, "--json", json.dumps({"notes": f"回访第{counter[0]}次，情况已核实。"}, ensure_ascii=False)])

def query(db, sql, args=()):
    """All rows of one read-only query (the checker never writes to the files it checks)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()

def change_set(db, scope=""):
    """(site, counter) of every change stored, of records in `scope` (record ids start with their region)."""
    return query(db, "SELECT s.hex, c.counter FROM fs_change c JOIN fs_site s ON s.id = c.site WHERE substr(c.row, 1, length(?)) = ?", (scope, scope))

def latest_per_row(db):
    return dict(query(db, "SELECT row, max(hlc) FROM fs_change GROUP BY row"))

def change_rows(db, keys):
    rows = query(db, "SELECT s.hex, c.counter, c.row, c.hlc FROM fs_change c JOIN fs_site s ON s.id = c.site")
    return {(h, n): (row, hlc) for h, n, row, hlc in rows if (h, n) in keys}

def records(db, scope=""):
    return sorted(query(db, "SELECT id, village, household_head, notes, follow_up_done, _deleted FROM fs_visit WHERE substr(id, 1, length(?)) = ?",
                        (scope, scope)))

def waiting(db):
    return json.loads(run([FS, "--db", db, "status", "--json"]).stdout)["sync"]["changesWaiting"]

stats = {"syncs": 0, "failedSyncs": 0, "successes": 0, "duplicates": 0, "changesPushed": 0}

def check_after(db, hub_db, r, what, in_flight_bound=None):
    """The invariants after one `fieldsync sync` run (r: CompletedProcess)."""
    stats["syncs"] += 1
    scope = SCOPE.get(db, "")
    lap = change_set(db)
    if len(lap) != len(set(lap)): fail(f"{what}: a change is stored twice at the laptop")
    hub = change_set(hub_db, scope)
    if len(hub) != len(set(hub)): fail(f"{what}: a change is stored twice at the hub")
    if r.returncode == 0:
        stats["successes"] += 1
        rep = json.loads(r.stdout)
        stats["duplicates"] += rep["pushedDuplicates"]
        stats["changesPushed"] += rep["pushed"]
        if not rep["complete"]: fail(f"{what}: exit 0 but the report says incomplete")
        missing = set(lap) - set(hub)
        if missing: fail(f"{what}: reported success but {len(missing)} of the laptop's changes are not at the hub, e.g. {sorted(missing)[:3]}")
        left = waiting(db)
        if left != 0: fail(f"{what}: reported success but {left} changes still wait to be pushed")
        # A laptop that started from a snapshot never receives history superseded before it
        # (sync.md §5): a change it lacks must be one its record has a later change for.
        lacking = set(hub) - set(lap)
        if lacking:
            later = latest_per_row(db)
            unexplained = [k for k, (row, hlc) in change_rows(hub_db, lacking).items() if later.get(row, -1) <= hlc]
            if unexplained: fail(f"{what}: reported success but the laptop lacks {len(unexplained)} current changes the hub has, e.g. {unexplained[:3]}")
        if records(db) != records(hub_db, scope): fail(f"{what}: reported success but the laptop's visits differ from the hub's")
    else:
        stats["failedSyncs"] += 1
        if r.returncode != 75 or not r.stderr.strip():
            fail(f"{what}: a failed sync must exit 75 (unavailable) with a message, got {r.returncode}: {r.stderr[:200]!r}")

def sync(db, url, attempts, ns=False):
    cmd = [FS, "--db", db, "sync", "--json", "--quiet", "--hub", url, "--attempts", str(attempts)]
    try:
        return run(cmd, ns=ns, check=False, timeout=1200)
    except subprocess.TimeoutExpired:
        fail(f"{os.path.basename(db)}: a sync hung for more than 1,200 s (its own timeouts should have ended it)")
        return subprocess.CompletedProcess(cmd, 75, "", "hung (killed by the checker)")

def cuts_in(proxy):
    ups = downs = 0
    for l in list(proxy.lines):
        m = re.match(r"cut connection \d+ after \d+ bytes (up|down)", l)
        if m:
            if m.group(1) == "up": ups += 1
            else: downs += 1
    return ups, downs

try:
    hub_db = os.path.join(W, "hub.sqlite")
    port = free_port()
    hub = start_hub(hub_db, port)
    direct = f"http://127.0.0.1:{port}"
    village = "520221105201"

    if "cuts" in PARTS:
        t0 = time.monotonic()
        # Two cutting proxies: one cuts within the first 1.5 KiB of a connection (headers, the
        # start of a body, small exchanges), the other anywhere in the first 64 KiB (deep
        # inside pushes and pull pages). Each sync goes through one of them at random. (An
        # offset beyond a connection's length cuts nothing, so the bounds are kept near the
        # sizes actually sent, or cuts become rare.)
        near = start_proxy(port, ["--cut-random", "0.6", "--seed", str(SEED), "--cut-max", str(1536)])
        far = start_proxy(port, ["--cut-random", "0.6", "--seed", str(SEED + 7), "--cut-max", str(64 * 1024)])
        proxies = [near, far]
        def cuts_now():
            u = d = 0
            for p in proxies:
                a, b = cuts_in(p); u += a; d += b
            return u, d
        a = laptop("cut-a", hub_db, direct, village)
        b = laptop("cut-b", hub_db, direct, village)
        rounds = 0
        dup_before = stats["duplicates"]
        while sum(cuts_now()) < CUTS:
            rounds += 1
            edit(a, village, rng.choice([20, 200, 900]))
            edit(b, village, rng.choice([5, 50]))
            for db in (a, b):
                # A few attempts: some runs fail (and must say so), the loop runs them again.
                for attempt in range(30):
                    via = f"http://127.0.0.1:{rng.choice(proxies).m.group(1)}"
                    r = sync(db, via, rng.choice([1, 2, 4]))
                    check_after(db, hub_db, r, f"cuts round {rounds} {os.path.basename(db)} run {attempt + 1}")
                    if r.returncode == 0: break
                else:
                    fail(f"cuts round {rounds}: {db} never completed in 30 runs")
            up, down = cuts_now()
            print(f"  cuts round {rounds}: {up + down} cuts so far, {stats['syncs']} syncs, {stats['failedSyncs']} reported failure", flush=True)
            if rounds > 400: fail("too many rounds without reaching the cut count"); break
        # One more pass each, so both hold everything.
        for db in (a, b):
            r = sync(db, direct, 6)
            check_after(db, hub_db, r, "cuts final")
        up, down = cuts_now()
        dups = stats["duplicates"] - dup_before
        bound = PUSH_BATCH * (up + down)
        if dups > bound: fail(f"cuts: the hub was sent {dups} changes it already had, more than {PUSH_BATCH} × {up + down} cuts")
        line = (f"cuts: {up + down} connections cut at random offsets ({up} while sending, {down} while receiving) over {rounds} rounds; "
                f"{stats['syncs']} syncs, {stats['failedSyncs']} reported failure, {stats['successes']} success; "
                f"{stats['changesPushed']} changes pushed, {dups} re-sent that the hub already had (bound {bound}); "
                f"{len(change_set(hub_db))} changes at the hub; {time.monotonic() - t0:.0f} s")
        summary.append(line); print(line, flush=True)
        for p in proxies: p.kill()

    if "vanish" in PARTS:
        t0 = time.monotonic()
        base = dict(stats)
        v = laptop("vanish", hub_db, direct, village)
        kills = midway = 0
        while kills < KILLS:
            edit(v, village, rng.choice([300, 1500, 3000]))
            # One attempt: the sync must fail and say so; three: it may ride out the restart.
            attempts = rng.choice([1, 3])
            p = subprocess.Popen([FS, "--db", v, "sync", "--json", "--quiet", "--attempts", str(attempts)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(0.01, 0.35))  # a sync of these edits takes about 0.3–1.5 s here
            if p.poll() is None: midway += 1
            hub.kill(); kills += 1
            time.sleep(rng.uniform(0, 2.0))
            hub = start_hub(hub_db, port)
            out, err = p.communicate(timeout=600)
            check_after(v, hub_db, subprocess.CompletedProcess(p.args, p.returncode, out, err), f"vanish kill {kills} (in-flight sync)")
            r = sync(v, direct, 6)
            check_after(v, hub_db, r, f"vanish kill {kills} (next sync)")
            if r.returncode != 0: fail(f"vanish kill {kills}: the sync after the hub came back failed: {r.stderr[:300]}")
        ok = query(hub_db, "PRAGMA integrity_check")[0][0]
        if ok != "ok": fail(f"vanish: hub integrity_check says {ok}")
        resent = stats["duplicates"] - base["duplicates"]
        if resent > PUSH_BATCH * kills: fail(f"vanish: {resent} changes re-sent, more than the batch in flight ({PUSH_BATCH}) × {kills} kills")
        line = (f"vanish: hub SIGKILLed {kills} times ({midway} while a sync was in flight) and restarted; {stats['syncs'] - base['syncs']} syncs, "
                f"{stats['failedSyncs'] - base['failedSyncs']} in-flight syncs reported failure, every next sync completed; "
                f"{stats['duplicates'] - base['duplicates']} re-sent changes the hub already had; hub integrity_check {ok}; {time.monotonic() - t0:.0f} s")
        summary.append(line); print(line, flush=True)

    if "shaped" in PARTS:
        if os.geteuid() != 0:
            line = "shaped: skipped (needs root for ip netns, tc, nft)"
            summary.append(line); print(line, flush=True)
        else:
            t0 = time.monotonic()
            base = dict(stats)
            netlab = os.path.join(ROOT, "scripts", "netlab")
            # One network lab per machine: a second run waits here rather than tear down the
            # namespace under the first.
            lock = open("/run/lock/fieldsync-netlab.lock" if os.path.isdir("/run/lock") else os.path.join(tempfile.gettempdir(), "fieldsync-netlab.lock"), "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
            run([netlab, "up"])
            try:
                # The shaped link goes to the host side of the veth; the hub listens on loopback.
                sp = start_proxy(port, ["--delay-ms", "300", "--cut-random", "0.5", "--seed", str(SEED + 1), "--cut-max", "1024"],
                                 listen="10.77.0.1:0")
                shaped = f"http://10.77.0.1:{sp.m.group(1)}"
                # A village of its own: each round is a day's edits both ways, not a snapshot
                # of everything the parts above pushed.
                s = laptop("shaped", hub_db, shaped, "520221105202", ns=True)
                peer = laptop("shaped-peer", hub_db, direct, "520221105202")
                runs = 0
                for round_ in range(opt("--shaped-rounds", 3)):
                    edit(peer, "520221105202", 40)  # comes down the shaped link
                    r = sync(peer, direct, 6)
                    if r.returncode != 0: fail(f"shaped round {round_ + 1}: the peer's direct sync failed: {r.stderr[:200]}")
                    edit(s, "520221105202", 40)     # goes up it
                    for attempt in range(20):
                        runs += 1
                        r = sync(s, shaped, 6, ns=True)
                        check_after(s, hub_db, r, f"shaped round {round_ + 1} run {attempt + 1}")
                        if r.returncode == 0: break
                    else:
                        fail(f"shaped round {round_ + 1}: never completed in 20 runs")
                up, down = cuts_in(sp)
                if os.environ.get("LINKS_DEBUG"): print("\n".join(sp.lines[-40:]))
                line = (f"shaped: 64 kbit/s, 10% loss each way, +300 ms each way, {up + down} cuts; {runs} syncs "
                        f"({stats['failedSyncs'] - base['failedSyncs']} reported failure), every round completed; "
                        f"{stats['duplicates'] - base['duplicates']} re-sent changes the hub already had; {time.monotonic() - t0:.0f} s")
                summary.append(line); print(line, flush=True)
            finally:
                run([netlab, "down"], check=False)
                lock.close()
finally:
    for p in procs:
        try: p.send_signal(signal.SIGKILL)
        except Exception: pass
    if "--keep" not in args and not violations:
        import shutil; shutil.rmtree(W, ignore_errors=True)

print()
for l in summary: print("  " + l)
if violations:
    print(f"reliability-links: {len(violations)} violation(s); seed {SEED}; work dir kept at {W}")
    sys.exit(1)
print(f"reliability-links: all held (lost 0, duplicated 0, false success 0); seed {SEED}")
