#!/usr/bin/env python3
"""Drives the hub's web console in headless Chromium as a supervisor would (scripts/console-test).

Starts a real `fieldsync-hub serve` on 127.0.0.1 with a fresh store, fills it through the
`fieldsync` CLI (three laptops, records in three villages and one outside the supervisor's
township, concurrent offline edits that make conflicts), adds a supervisor, then in Chromium:
a wrong password first, signing in, a report, the record browser and a record's history, the
conflict list, one conflict side by side, settling it, the device list, signing out. It checks
what each page shows, that the hub's API agrees with the page after the settlement, and (with
plain HTTP) that forms without the CSRF token or from another origin are refused.

Screenshots of the main pages go to --shots (docs/console). Exit 0 when every check passed; on
the first failure it says what failed (and saves the page it was on) and exits 1.
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.error, urllib.parse, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

TOWN = "520221105"
VILLAGES = {"520221105201": "牛角村", "520221105202": "大坪村", "520221105203": "岩脚村"}
OTHER_TOWN_VILLAGE = "520221106201"
SUPERVISOR, PASSWORD = "陈主任", "console-test-密码-2026"
OUTSIDE_TEXT = "邻镇的记录-不应出现"
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"

checks = []


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    checks.append(what)
    print(f"  ok  {what}", flush=True)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise Failure(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


class World:
    """A hub on loopback and three laptops, filled with a day's records and two conflicts."""

    def __init__(self, bin_dir, tmp):
        self.fs, self.hub_bin, self.tmp = os.path.join(bin_dir, "fieldsync"), os.path.join(bin_dir, "fieldsync-hub"), tmp
        self.db = os.path.join(tmp, "hub.sqlite")
        self.hub = subprocess.Popen([self.hub_bin, "serve", "--create", "--db", self.db, "--host", "127.0.0.1", "--port", "0", "--log-level", "error"],
                                    stdout=open(os.path.join(tmp, "hub.out"), "w"), stderr=open(os.path.join(tmp, "hub.log"), "w"))
        for _ in range(300):
            out = open(os.path.join(tmp, "hub.out")).read()
            m = re.search(r"http://127\.0\.0\.1:\d+", out)
            if m:
                self.url = m.group(0)
                break
            if self.hub.poll() is not None:
                raise Failure("the hub exited at start: " + open(os.path.join(tmp, "hub.log")).read())
            time.sleep(0.1)
        else:
            raise Failure("the hub did not start listening within 30 s")

    def stop(self):
        if self.hub.poll() is None:
            self.hub.send_signal(signal.SIGTERM)
            try:
                self.hub.wait(10)
            except subprocess.TimeoutExpired:
                self.hub.kill()

    def cli(self, laptop, *args):
        return run([self.fs, "--db", os.path.join(self.tmp, laptop + ".sqlite"), *args])

    def add(self, laptop, kind, fields):
        return self.cli(laptop, "record", "add", kind, "--json", json.dumps(fields, ensure_ascii=False)).strip().splitlines()[-1].strip()

    def fill(self):
        for laptop, scope, author in [("a", TOWN, "王芳"), ("b", TOWN, "李明"), ("c", "520221106", "赵强")]:
            code = json.loads(run([self.hub_bin, "device", "add", "--db", self.db, "--name", f"{author}的笔记本", "--scope", scope, "--json"]))["code"]
            self.cli(laptop, "init", "--site", f"{author}的笔记本", "--author", author)
            self.cli(laptop, "enroll", "--hub", self.url, "--code", code)
        # Two more laptops of the township: one never enrolled, one enrolled and then revoked.
        run([self.hub_bin, "device", "add", "--db", self.db, "--name", "刘强的笔记本", "--scope", "520221105203", "--json"])
        code = json.loads(run([self.hub_bin, "device", "add", "--db", self.db, "--name", "旧笔记本", "--scope", "520221105202", "--json"]))["code"]
        self.cli("d", "init", "--site", "旧笔记本", "--author", "周敏")
        self.cli("d", "enroll", "--hub", self.url, "--code", code)
        self.revoked = code
        self.add("a", "region", {"id": TOWN, "name": "岩脚镇", "level": "乡镇", "parent_code": "520221"})
        for code, name in VILLAGES.items():
            self.add("a", "region", {"id": code, "name": name, "level": "村", "parent_code": TOWN})
        months = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
        kinds = ["入户走访", "回访", "院坝会", "群众会", "电话回访"]
        for i in range(24):
            v = list(VILLAGES)[i % 3]
            self.add("a" if i % 2 else "b", "visit", {
                "village": v, "cadre_name": "王芳" if i % 2 else "李明", "visit_date": f"{months[i % 5]}-{10 + i % 15:02d}",
                "visit_kind": kinds[i % 5], "household_head": f"户主{i + 1}号", "topics": ["政策宣传", "就业"] if i % 3 else ["医疗"],
                "notes": f"第{i + 1}次走访：了解春耕和务工情况。群众反映道路需要硬化。", "follow_up_done": i % 4 == 0})
        statuses = ["已化解", "已化解", "调解中", "受理", "已上报", "已化解"]
        for i in range(6):
            self.add("a", "dispute", {"village": list(VILLAGES)[i % 3], "category": ["土地承包", "邻里纠纷", "婚姻家庭"][i % 3],
                                      "parties": f"当事人甲{i}与当事人乙{i}", "summary": "因宅基地边界发生争执。", "reported_on": f"{months[i % 5]}-05",
                                      "status": statuses[i], **({"resolved_on": f"{months[i % 5]}-20"} if statuses[i] == "已化解" else {})})
        self.add("a", "project", {"village": "520221105201", "name": "村集体茶叶加工厂", "project_kind": "集体经济", "status": "在建",
                                  "funding_source": "帮扶单位", "budget_fen": 150000000, "spent_fen": 62345050, "started_on": "2026-08-01"})
        self.add("b", "project", {"village": "520221105202", "name": "通组公路硬化", "project_kind": "基础设施", "status": "完工",
                                  "funding_source": "县", "budget_fen": 48000000, "spent_fen": 47150000, "started_on": "2026-07-01"})
        self.hostile = self.add("a", "household", {"village": "520221105203", "head_name": "张<b>三</b>", "members": 4, "category": "监测户", "notes": HOSTILE})
        self.add("c", "dispute", {"village": OTHER_TOWN_VILLAGE, "category": "劳资", "parties": OUTSIDE_TEXT, "summary": OUTSIDE_TEXT,
                                  "reported_on": "2026-11-01", "status": "受理"})
        base_note = "双方于11月10日到村委会调解。张某同意退让半米。李某要求补偿青苗费。约定月底前立界桩。"
        self.dispute = self.add("a", "dispute", {"village": "520221105201", "category": "邻里纠纷", "parties": "张某与李某", "summary": "宅基地边界争执，双方多次协商未果。",
                                                 "reported_on": "2026-11-09", "status": "调解中", "resolution": base_note})
        for laptop in ["a", "b", "c", "d"]:
            self.cli(laptop, "sync", "--quiet")
        old = next(x for x in json.loads(run([self.hub_bin, "device", "list", "--db", self.db, "--json"])) if x["name"] == "旧笔记本")
        run([self.hub_bin, "device", "revoke", "--db", self.db, old["device"]])
        # Offline at the same time: both change the status and rewrite the mediation notes.
        self.cli("a", "record", "edit", self.dispute, "--json", json.dumps({"status": "已化解", "resolution": base_note.replace("李某要求补偿青苗费。", "李某同意不再要求补偿。") + "已签订调解协议。"}, ensure_ascii=False))
        self.cli("b", "record", "edit", self.dispute, "--json", json.dumps({"status": "已上报", "resolution": base_note + "李某不同意，已上报镇综治中心。"}, ensure_ascii=False))
        for laptop in ["a", "b", "a"]:
            self.cli(laptop, "sync", "--quiet")
        env = dict(os.environ, FIELDSYNC_SUPERVISOR_PASSWORD=PASSWORD)
        run([self.hub_bin, "supervisor", "add", "--db", self.db, "--name", SUPERVISOR, "--scope", TOWN], env=env)

    def api_conflicts(self):
        """The open conflicts as the hub's own API reports them (a session of its own)."""
        req = urllib.request.Request(self.url + "/v1/sessions", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"name": SUPERVISOR, "password": PASSWORD}).encode())
        token = json.load(urllib.request.urlopen(req, timeout=60))["token"]
        req = urllib.request.Request(self.url + "/v1/conflicts", headers={"Authorization": "Bearer " + token})
        return json.load(urllib.request.urlopen(req, timeout=60))


def browser():
    o = Options()
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=zh-CN", "--window-size=1280,900",
              "--no-first-run", "--disable-extensions", "--disable-background-networking", "--force-device-scale-factor=1"]:
        o.add_argument(a)
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    d = webdriver.Chrome(service=Service(executable_path=driver), options=o)
    d.set_page_load_timeout(60)
    return d


class Console:
    def __init__(self, d, url, shots):
        self.d, self.url, self.shots = d, url, shots

    def open(self, path):
        self.d.get(self.url + path)

    def text(self, css="body"):
        return self.d.find_element(By.CSS_SELECTOR, css).text

    def path(self):
        return urllib.parse.urlsplit(self.d.current_url)._replace(scheme="", netloc="").geturl()

    def type(self, css, value):
        e = self.d.find_element(By.CSS_SELECTOR, css)
        e.clear()
        e.send_keys(value)

    def click(self, css):
        """Clicks a link or button that loads another page, and waits until it has."""
        self.follow(self.d.find_element(By.CSS_SELECTOR, css))

    def follow(self, element):
        # The page being left is marked with a script variable and the wait ends when a loaded
        # page lacks it. Waiting for the old <html> node to go stale instead failed a CI run:
        # Chromium sometimes answers for a node of a replaced document with "Node with given id
        # does not belong to the document" rather than "stale element", which staleness_of does
        # not expect.
        self.d.execute_script("window.__fieldsyncLeaving = true")
        element.click()

        def arrived(d):
            try:
                return d.execute_script("return window.__fieldsyncLeaving !== true && document.readyState === 'complete'")
            except WebDriverException:
                return False  # mid-navigation
        WebDriverWait(self.d, 60).until(arrived)

    def shot(self, name):
        if not self.shots:
            return
        h = self.d.execute_script("return Math.max(document.documentElement.scrollHeight, 600)")
        self.d.set_window_size(1280, min(int(h) + 20, 4000))
        self.d.save_screenshot(os.path.join(self.shots, name + ".png"))
        self.d.set_window_size(1280, 900)


def csrf_checks(w):
    """Plain HTTP: a form without the session's token, or from another origin, changes nothing."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)

    def call(path, data=None, headers=None):
        req = urllib.request.Request(w.url + path, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
        try:
            r = opener.open(req, timeout=60)
        except urllib.error.HTTPError as e:
            r = e
        return r.status, r.headers, r.read().decode("utf-8", "replace")

    status, headers, page = call("/console/login")
    nonce = re.search(r"fs_login=([0-9a-f]+)", headers.get("Set-Cookie", "")).group(1)
    token = re.search(r'name="login_csrf" value="([0-9a-f]+)"', page).group(1)
    form = urllib.parse.urlencode({"login_csrf": token, "name": SUPERVISOR, "password": PASSWORD}).encode()
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = call("/console/login", form, {**ctype})
    check(status == 403, "HTTP: a sign-in without the login cookie (a forged login form) is refused with 403")
    status, headers, _ = call("/console/login", form, {**ctype, "Cookie": "fs_login=" + nonce})
    check(status == 303, "HTTP: a sign-in with the form's token signs in (303)")
    session = re.search(r"fs_session=(fss_[0-9a-f]+)", " ".join(headers.get_all("Set-Cookie"))).group(1)
    cookie = {"Cookie": "fs_session=" + session}
    conflicts = w.api_conflicts()
    target = conflicts[0]
    action = f"/console/conflicts/{target['row']}/{target['field']}/resolve"
    status, _, page = call(action, urllib.parse.urlencode({"how": "newest"}).encode(), {**ctype, **cookie})
    check(status == 403 and "缺少安全令牌" in page, "HTTP: settling a conflict without the CSRF token is refused with 403")
    _, _, overview = call("/console", None, cookie)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', overview).group(1)
    status, _, _ = call(action, urllib.parse.urlencode({"how": "newest", "csrf": "0" * len(csrf)}).encode(), {**ctype, **cookie})
    check(status == 403, "HTTP: a wrong CSRF token is refused with 403")
    status, _, _ = call(action, urllib.parse.urlencode({"how": "newest", "csrf": csrf}).encode(), {**ctype, **cookie, "Origin": "http://evil.example"})
    check(status == 403, "HTTP: the right token sent from another origin is refused with 403")
    check(len(w.api_conflicts()) == len(conflicts), "HTTP: after the refused forms the hub still lists every conflict open")
    status, headers, _ = call("/console/logout", urllib.parse.urlencode({"csrf": csrf}).encode(), {**ctype, **cookie})
    check(status == 303, "HTTP: signing out with the token works")
    status, headers, _ = call("/console", None, cookie)
    check(status == 303 and "/console/login" in headers.get("Location", ""), "HTTP: the old session cookie no longer opens pages")


def journey(c, w):
    d = c.d
    c.open("/console/conflicts")
    check(c.path().startswith("/console/login"), "a protected page without a session goes to the sign-in page")
    check("督导登录" in c.text() and "请先登录" in c.text(), "the sign-in page is in Chinese and says to sign in first")
    c.type("#name", SUPERVISOR)
    c.type("#password", "wrong password")
    c.click("#login")
    check("账号或密码错误" in c.text("#login-error"), "a wrong password shows 账号或密码错误")
    c.shot("login")
    c.type("#password", PASSWORD)
    c.click("#login")
    check(c.path() == "/console", f"signing in opens the overview (at {c.path()})")
    check(SUPERVISOR in c.text("#who-name") and TOWN in c.text("#who-scope"), "the header names the supervisor and the scope")
    check("未解决冲突 2 个" in c.text("#overview-conflicts"), "the overview counts 2 open conflicts")

    report_step(c, w)

    c.open("/console/records?kind=visit")
    check("走访记录" in c.text("h1") and "共 24 条" in c.text(), "the record browser lists the 24 visits")
    c.shot("records")
    c.type("input[name=q]", "户主7号")
    c.click("form.filters button")
    # The rows' text is read again if Chromium replaced the nodes meanwhile (a stale node once
    # failed a CI run: "Node with given id does not belong to the document").
    texts = None
    for _ in range(20):
        try:
            texts = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#records tbody tr")]
            break
        except WebDriverException:
            time.sleep(0.1)
    check(texts is not None and len(texts) == 1 and "户主7号" in texts[0], "searching 户主7号 finds exactly that visit")
    c.open("/console/records?kind=dispute")
    check(OUTSIDE_TEXT not in c.text(), "a dispute in another township is not listed")
    c.open("/console/records?kind=dispute&q=" + urllib.parse.quote(OUTSIDE_TEXT))
    check(len(d.find_elements(By.CSS_SELECTOR, "#records tbody tr")) == 0, "searching its text finds nothing either")
    c.open(f"/console/records?kind=household")
    c.click("#records tbody tr a")
    check(HOSTILE in c.text("#fields") and d.title != "pwned", "record text that looks like markup shows as text and runs nothing")
    c.open(f"/console/records/{w.dispute}")
    history = c.text("#history")
    check("修改历史" in c.text() and "王芳" in history and "李明" in history and "冲突中" in history and "Asia/Shanghai" in history,
          "the dispute's history shows both authors, the competing values and times with their zone")
    c.shot("record-history")

    c.open("/console/conflicts")
    check("本范围内未解决冲突共 2 个" in c.text("#conflict-total"), "the conflict list counts 2")
    c.shot("conflicts")
    c.follow(d.find_element(By.XPATH, f"//table[@id='conflicts']//a[contains(@href, '/resolution')]"))
    cand = c.text("#candidates")
    check("王芳" in cand and "李明" in cand and "目前胜出" in cand and "王芳的笔记本" in cand and "李明的笔记本" in cand,
          "the conflict shows both candidates side by side with authors and devices")
    check("共同起点" in c.text("#base"), "the conflict shows the value both started from")
    diff = c.text(".diffs")
    check("李某同意不再要求补偿。" in diff and "已上报镇综治中心" in diff, "the long notes' changes are shown sentence by sentence")
    c.shot("conflict-detail")
    loser = d.find_elements(By.CSS_SELECTOR, "#candidates thead th")[1:]
    winner_col = next(i for i, th in enumerate(loser) if "目前胜出" in th.text)
    other = 2 if winner_col == 0 else 1
    taken = d.find_elements(By.CSS_SELECTOR, "#candidates tbody tr")[0].find_elements(By.CSS_SELECTOR, "td")[other - 1].text
    d.find_element(By.CSS_SELECTOR, f"#take-{other}").click()
    c.type("#note", "电话核实后采用")
    c.click("#resolve")
    check("冲突已解决" in c.text("#conflict-settled") and SUPERVISOR in c.text("#resolution") and "电话核实后采用" in c.text("#resolution"),
          "after settling, the page says the conflict is settled, by whom, with the note")
    check(c.text("#current-value").strip() == taken.strip(), "the value now is the one taken")
    left = w.api_conflicts()
    check([x["field"] for x in left] == ["status"], f"the hub's API agrees: only the status conflict is left ({[x['field'] for x in left]})")
    c.open(f"/console/records/{w.dispute}")
    check("电话核实后采用" in c.text("#history") and SUPERVISOR in c.text("#history"), "the record's history shows the settlement by the supervisor")

    c.open("/console/devices")
    rows = c.text("#devices")
    check("王芳的笔记本" in rows and "李明的笔记本" in rows and "赵强的笔记本" not in rows, "the device list shows the township's laptops, not the other township's")
    check("正常" in rows, "a device that just synced shows 正常")
    check("待注册" in rows and "已吊销" in rows, "a device never enrolled shows 待注册, a revoked one 已吊销")
    c.shot("devices")

    c.click("#logout")
    check("已退出登录" in c.text(), "signing out says so")
    c.open("/console/conflicts")
    check(c.path().startswith("/console/login"), "after signing out, a protected page goes back to sign-in")


def report_step(c, w):
    d = c.d
    c.click("header nav a[href='/console/reports']")
    check("报表" in c.text("h1"), "the report page opens from the navigation")
    # The form, as a person fills it in (a date field's value is set directly: typing into it
    # depends on the browser's locale).
    c.type("#report-region", TOWN)
    for css, day in [("#report-from", "2026-07-01"), ("#report-to", "2026-11-30")]:
        d.execute_script("arguments[0].value = arguments[1]", d.find_element(By.CSS_SELECTOR, css), day)
    c.click("#report-submit")
    check("2026-07-01 至 2026-11-30" in c.text("#report-period"), "the report covers the period asked for")
    cards = c.text("#report-cards")
    check("24\n走访次数" in cards, f"the report counts the 24 visits made in the period ({cards!r})")
    check("7\n受理纠纷" in cards, "the report counts the 7 disputes received in the township")
    check("1,980,000.00 元\n项目预算" in cards and "1,094,950.50 元\n已支出" in cards, "project money (stored in 分) is summed and shown in 元")
    bars = d.find_element(By.CSS_SELECTOR, "#chart-visits-by-unit").get_attribute("outerHTML")
    check(all(name in bars for name in VILLAGES.values()) and bars.count("<rect") == 3, "the chart has one bar per village, named")
    months = d.find_element(By.CSS_SELECTOR, "#chart-visits-by-month").get_attribute("outerHTML")
    check(all(m in months for m in ["2026-07", "2026-11"]), "the monthly chart runs from July to November")
    check("走访情况" in c.text("#report-visits") or "走访次数" in c.text("#report-visits"), "the visit table has Chinese headings")
    href = d.find_element(By.CSS_SELECTOR, "#csv-visits").get_attribute("href")
    cookie = "fs_session=" + d.get_cookie("fs_session")["value"]
    body = urllib.request.urlopen(urllib.request.Request(href, headers={"Cookie": cookie}), timeout=60).read()
    check(body.startswith(b"\xef\xbb\xbf") and "走访次数" in body.decode("utf-8"), "the visit table downloads as CSV (UTF-8 with BOM, Chinese headers)")
    c.shot("report")


def report_failure(tool, e, d, logs):
    """Says which check failed (or what broke), keeps the page the browser was on and the tails of
    the logs; returns the exit status 1. Shared by console-test and app-test."""
    what = str(e) if isinstance(e, Failure) else f"unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print(f"{tool}: FAILED after {len(checks)} passed checks: {what}", file=sys.stderr)
    if d is not None:
        keep = os.path.join(tempfile.gettempdir(), f"{tool}-failure")
        os.makedirs(keep, exist_ok=True)
        d.save_screenshot(os.path.join(keep, "page.png"))
        open(os.path.join(keep, "page.html"), "w").write(d.page_source)
        print(f"{tool}: the page was {d.current_url}; saved in {keep}/page.png and page.html", file=sys.stderr)
    for name, path in logs.items():
        if os.path.exists(path):
            print(f"{tool}: {name} log tail:\n" + open(path).read()[-2000:], file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="console-test.")
    w = None
    d = None
    started = time.time()
    try:
        w = World(args.bin, tmp)
        print(f"console-test: hub at {w.url}, filling it through the CLI…", flush=True)
        w.fill()
        print(f"console-test: filled in {time.time() - started:.0f} s; starting Chromium", flush=True)
        d = browser()
        c = Console(d, w.url, args.shots)
        journey(c, w)
        csrf_checks(w)
        print(f"console-test: all {len(checks)} checks passed in {time.time() - started:.0f} s")
        return 0
    except Exception as e:
        return report_failure("console-test", e, d, {"hub": os.path.join(tmp, "hub.log")} if w is not None else {})
    finally:
        if d is not None:
            d.quit()
        if w is not None:
            w.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
