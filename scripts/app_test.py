#!/usr/bin/env python3
"""Drives the cadre's app (`fieldsync app`, docs/app.md) in headless Chromium as a cadre would
(scripts/app-test).

The world is the console test's (scripts/console_test.py): a real `fieldsync-hub serve` on
127.0.0.1, laptops enrolled through the CLI with a day's records, a hostile household note and a
conflict made offline. The app runs over laptop "a" (王芳's), on 127.0.0.1 with a free port.

What it checks, each against the replica file or the hub, not only the page:
- safety: no session without the one-time link; a link works once; Host names other than
  127.0.0.1/localhost get 403 (DNS rebinding); a POST without the CSRF token or from another
  origin is refused and writes nothing; the CSP and cookie flags; a hostile <script> shows as text;
- typing Chinese through the input method (DevTools Input.imeSetComposition / insertText): Enter
  while composing does not submit, the draft never holds half-composed pinyin;
- forms: Chinese errors at the field with focus on the first, "did you mean", money in 元
  (12.5万, full-width digits) stored exactly in 分, defaults (village, cadre, today);
- a double click and a replayed POST make one record;
- a draft survives a killed browser and a SIGKILLed app;
- lists (search, filters, paging, CSV with BOM), the record page (history, hub state, edit,
  delete, undelete), conflicts settled side by side, sync with "立即同步" (and a failed sync not
  changing the last success), bundle export and import through the page;
- every page fits 1366×768 without sideways scrolling.
Screenshots of every page go to --shots (docs/app). Exit 0 when every check passed.
"""
import argparse, gzip, json, os, re, shutil, signal, sqlite3, subprocess, sys, tempfile, time, urllib.error, urllib.parse, urllib.request

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console_test import HOSTILE, TOWN, Console, Failure, World, browser, check, checks, report_failure, run  # noqa: E402


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(NoRedirect)


def http(method, url, data=None, headers=None):
    """(status, headers, body) for a request that follows no redirect."""
    body = urllib.parse.urlencode(data, doseq=True).encode() if isinstance(data, (dict, list)) else data
    h = dict(headers or {})
    if body is not None and "Content-Type" not in h:
        h["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        r = opener.open(req, timeout=60)
        return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class App:
    """`fieldsync app` over laptop a's replica, restartable (SIGKILL included)."""

    def __init__(self, w):
        self.w, self.db = w, os.path.join(w.tmp, "a.sqlite")
        self.proc, self.port = None, None

    def start(self):
        out = os.path.join(self.w.tmp, "app.out")
        self.proc = subprocess.Popen([self.w.fs, "--db", self.db, "app", "--port", str(self.port or 0)],
                                     stdout=open(out, "w"), stderr=open(os.path.join(self.w.tmp, "app.log"), "w"))
        for _ in range(300):
            m = re.search(r"http://127\.0\.0\.1:(\d+)/open\?t=[0-9a-f-]+", open(out).read())
            if m:
                self.port, self.link = int(m.group(1)), m.group(0)
                self.url = f"http://127.0.0.1:{self.port}"
                return self.link
            if self.proc.poll() is not None:
                raise Failure("the app exited at start: " + open(os.path.join(self.w.tmp, "app.log")).read())
            time.sleep(0.1)
        raise Failure("the app did not print its link within 30 s")

    def new_link(self):
        return run([self.w.fs, "--db", self.db, "app", "--link"]).strip()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def session(self):
        """A session of its own for plain HTTP checks: (cookie header, csrf)."""
        link = self.new_link()
        t = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["t"][0]
        status, h, _ = http("POST", self.url + "/open", {"t": t}, {"Origin": self.url})
        check(status == 303 and "fs_app=" in h.get("Set-Cookie", ""), "a fresh one-time link from `fieldsync app --link` opens a session")
        cookie = h["Set-Cookie"].split(";")[0]
        _, _, page = http("GET", self.url + "/", headers={"Cookie": cookie})
        csrf = re.search(rb'name="csrf" content="([0-9a-f]+)"', page).group(1).decode()
        return cookie, csrf

    def sql(self, query, *args):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def records(self, kind, **where):
        cond = " AND ".join(f"{k} = ?" for k in where) or "1"
        return self.sql(f"SELECT id FROM {kind} WHERE {cond}", *where.values())


def wait(d, cond, what, timeout=30):
    try:
        WebDriverWait(d, timeout).until(lambda _: cond())
    except Exception:
        raise Failure("timed out: " + what)


def fits(c, name):
    """No sideways scrolling at 1366×768."""
    c.d.set_window_size(1366, 768)
    sw, cw = c.d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    check(sw <= cw, f"the {name} page fits 1366×768 without sideways scrolling ({sw} ≤ {cw})")
    c.d.set_window_size(1280, 900)


def ime(d, text_pinyin, committed):
    """Types like a Chinese input method: composition updates, then the committed text."""
    for i in range(1, len(text_pinyin) + 1):
        d.execute_cdp_cmd("Input.imeSetComposition", {"text": text_pinyin[:i], "selectionStart": i, "selectionEnd": i})
    return committed


def enter(d):
    d.execute_cdp_cmd("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
    d.execute_cdp_cmd("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})


def choose(d, element_id, value=None, text=None):
    """Picks an option, finding the select afresh if Chromium replaced its node meanwhile (a
    DevTools "Node … does not belong to the document" seen once on a loaded machine)."""
    for attempt in range(3):
        try:
            sel = Select(d.find_element(By.ID, element_id))
            sel.select_by_value(value) if value is not None else sel.select_by_visible_text(text)
            return
        except (StaleElementReferenceException, WebDriverException) as e:
            if attempt == 2 or ("does not belong to the document" not in str(e) and not isinstance(e, StaleElementReferenceException)):
                raise
            time.sleep(0.3)


def security(app, w):
    status, _, body = http("GET", app.url + "/")
    check(status == 401 and "fieldsync app" in body.decode(), "without the link there is no session: 401 with how to open the app")
    status, _, _ = http("GET", app.url + "/", headers={"Host": f"evil.example:{app.port}"})
    check(status == 403, "a request naming another host (DNS rebinding) gets 403")
    status, _, _ = http("GET", f"http://localhost:{app.port}/assets/app.css")
    check(status == 200, "localhost with the app's port is allowed")
    cookie, csrf = app.session()
    before = len(app.records("visit"))
    form = {"key": "f" * 32, "kind": "visit", "f.village": "520221105201", "f.cadre_name": "伪造", "f.visit_date": "2026-11-20", "f.visit_kind": "回访"}
    status, _, _ = http("POST", app.url + "/records/visit/new", form, {"Cookie": cookie, "Origin": app.url})
    check(status == 403, "a form without the CSRF token is refused (403)")
    status, _, _ = http("POST", app.url + "/records/visit/new", dict(form, csrf=csrf), {"Cookie": cookie, "Origin": "http://evil.example"})
    check(status == 403, "a form from another origin is refused (403) even with the token")
    status, _, _ = http("POST", app.url + "/records/visit/new", dict(form, csrf=csrf), {"Cookie": cookie, "Sec-Fetch-Site": "cross-site"})
    check(status == 403, "a form the browser marks cross-site is refused (403)")
    check(len(app.records("visit")) == before, "the refused forms wrote nothing")
    status, h, _ = http("GET", app.url + "/", headers={"Cookie": cookie})
    csp = h.get("Content-Security-Policy", "")
    check("script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, "pages carry a strict CSP (own scripts only, no frames)")
    status, _, _ = http("GET", app.url + "/record/x/delete", headers={"Cookie": cookie})
    check(status in (404, 405), "GET never deletes (no state change on GET)")
    return cookie, csrf


def journey(c, app, w):
    d = c.d
    # --- Opening: the one-time link goes straight in; the same link never works twice.
    d.get(app.link)
    wait(d, lambda: c.path() == "/" and "首页" in d.title, "the link leads to the home page")
    ck = d.get_cookie("fs_app")
    check(ck and ck["httpOnly"] and ck.get("sameSite") == "Strict", "the session cookie is HttpOnly and SameSite=Strict")
    t = urllib.parse.parse_qs(urllib.parse.urlsplit(app.link).query)["t"][0]
    status, _, _ = http("POST", app.url + "/open", {"t": t}, {"Origin": app.url})
    check(status == 403, "the one-time link does not open a second session")
    check("未上传" in c.text("#pending") or "全部已上传" in c.text("#pending"), "every page shows what the hub does not have yet")
    c.shot("home")
    fits(c, "home")

    # --- A visit typed with the input method.
    c.open("/records/visit/new")
    check(Select(d.find_element(By.ID, "f-village")).first_selected_option.get_attribute("value") == "",
          "a township laptop chooses the village from its list (no silent default outside a village)")
    check(d.find_element(By.ID, "f-cadre_name").get_attribute("value") == "王芳", "the cadre defaults to the laptop's author")
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    check(d.find_element(By.ID, "f-visit_date").get_attribute("value") == today, "the date defaults to today (Asia/Shanghai)")
    key = d.find_element(By.NAME, "key").get_attribute("value")
    head = d.find_element(By.ID, "f-household_head")
    head.click()
    committed = ime(d, "zhangsan", "张三")
    page = d.find_element(By.TAG_NAME, "html")
    visits = len(app.records("visit"))
    enter(d)  # Enter while composing picks the candidate; it never submits the form
    time.sleep(2.5)
    try:
        page.is_enabled()
        same_page = True
    except StaleElementReferenceException:
        same_page = False
    check(same_page and c.path() == "/records/visit/new" and len(app.records("visit")) == visits,
          "Enter while the input method is composing does not submit (same page, no record)")
    drafts = app.sql("SELECT fields FROM fs_app_draft WHERE key = ?", key)
    check(all("zhang" not in f for (f,) in drafts), "no draft holds half-composed pinyin")
    d.execute_cdp_cmd("Input.insertText", {"text": committed})
    wait(d, lambda: any("张三" in f for (f,) in app.sql("SELECT fields FROM fs_app_draft WHERE key = ?", key)),
         "the committed text reaches the draft in the replica file")
    check(head.get_attribute("value") == "张三", "the field holds the committed Chinese text")
    choose(d, "f-village", value="520221105201")
    notes = d.find_element(By.ID, "f-notes")
    notes.click()
    d.execute_cdp_cmd("Input.insertText", {"text": "走访了解春耕情况，群众反映灌溉渠需要维修。"})
    # Submit with the visit kind missing: the error is at the field, in Chinese, with focus there.
    c.click("#save")
    check("请填写走访方式" in c.text("#error-visit_kind"), "a missing required field is named at the field in Chinese")
    check(d.switch_to.active_element.get_attribute("id") == "f-visit_kind", "focus goes to the first field in error")
    check(d.find_element(By.ID, "f-household_head").get_attribute("value") == "张三", "what was typed is still there after the error")
    c.shot("form-errors")
    choose(d, "f-visit_kind", text="入户走访")
    d.find_element(By.ID, "f-topics-1").click()
    # A double click on 保存 makes one record.
    btn = d.find_element(By.ID, "save")
    ActionChains(d).double_click(btn).perform()
    wait(d, lambda: c.path().startswith("/record/"), "the saved visit's page opens")
    check(len(app.records("visit", household_head="张三")) == 1, "a double click made one record")
    vid = app.records("visit", household_head="张三")[0][0]
    key2 = app.sql("SELECT key FROM fs_app_submitted WHERE record = ?", vid)[0][0]
    cookie, csrf = app.session()
    status, h, _ = http("POST", app.url + "/records/visit/new", {"csrf": csrf, "key": key2, "kind": "visit", "f.village": "520221105201",
                        "f.household_head": "张三", "f.cadre_name": "王芳", "f.visit_date": today, "f.visit_kind": "入户走访"},
                        {"Cookie": cookie, "Origin": app.url})
    check(status == 303 and vid in h.get("Location", ""), "a replayed submit answers with the first record and makes none")
    check(len(app.records("visit", household_head="张三")) == 1, "still one record after the replay")
    check(not app.sql("SELECT 1 FROM fs_app_draft WHERE key = ?", key2), "the submitted form's draft is gone")
    check("张三" in c.text("#row-household_head") and "民意收集" in c.text("#row-topics"), "the record page shows every field with its value")
    check("未上传" in c.text("#history"), "the history says the hub does not have the new visit yet")
    check("定位" not in c.text("#history"), "a new record writes no empty fields")
    check("牛角村" in c.text("#row-village"), "the village shows with its name")
    c.shot("record")
    fits(c, "record")

    # --- Money in 元: 12.5万 and full-width digits, stored exactly in 分; "did you mean".
    c.open("/records/project/new")
    choose(d, "f-village", value="520221105202")
    d.find_element(By.ID, "f-name").send_keys("村道路灯安装")
    choose(d, "f-project_kind", text="基础设施")
    choose(d, "f-status", text="在建")
    d.find_element(By.ID, "f-budget_fen").send_keys("12.5万")
    d.find_element(By.ID, "f-spent_fen").send_keys("１，２００．５０")
    d.find_element(By.ID, "f-households_benefiting").send_keys("一百")
    c.click("#save")
    check("不是整数" in c.text("#error-households_benefiting"), "a word where a number belongs is explained at the field")
    d.find_element(By.ID, "f-households_benefiting").clear()
    d.find_element(By.ID, "f-households_benefiting").send_keys("８６")
    c.click("#save")
    pid = app.records("project", name="村道路灯安装")
    check(len(pid) == 1, "the project was saved")
    budget, spent, hh = app.sql("SELECT budget_fen, spent_fen, households_benefiting FROM project WHERE id = ?", pid[0][0])[0]
    check(budget == 12_500_000 and spent == 120_050 and hh == 86, f"12.5万 元 is 12,500,000 分 and １，２００．５０ is 120,050 分 (got {budget}, {spent}, {hh})")
    check("125,000.00 元" in c.text("#row-budget_fen"), "the page shows the budget in 元")
    cookie, csrf = app.session()
    status, _, page = http("POST", app.url + "/records/dispute/new", {"csrf": csrf, "key": "d" * 32, "kind": "dispute", "f.village": "520221105201",
                           "f.category": "土地", "f.parties": "甲与乙", "f.summary": "边界", "f.reported_on": today, "f.status": "受理"},
                           {"Cookie": cookie, "Origin": app.url})
    check(status == 422 and "您是不是要选“土地承包”" in page.decode(), "a near-miss choice gets 'did you mean'")

    # --- The hostile note shows as text.
    c.open("/record/" + w.hostile)
    check(d.title != "pwned" and "<script>" in c.text("#row-notes"), "a hostile <script> in a record shows as text and never runs")

    # --- Edit, delete, undelete.
    c.open("/record/" + vid)
    c.click("#edit")
    e = d.find_element(By.ID, "f-follow_up")
    e.send_keys("帮助联系水利站。")
    c.click("#save")
    check("帮助联系水利站" in c.text("#row-follow_up") and "已保存" in c.text("#saved"), "an edit is saved and shown")
    d.execute_script("window.confirm = function () { return true; }")
    c.click("#delete")
    check("已删除" in c.text("h1"), "delete marks the record deleted")
    c.click("#undelete")
    check("已删除" not in c.text("h1") and "已恢复" in c.text("#restored-notice"), "undelete brings it back")

    # --- Lists: search, filters, paging, CSV.
    c.open("/records/visit")
    check("共" in c.text("#total"), "the visit list shows its total")
    c.shot("list")
    fits(c, "list")
    c.type("#filter-q", "户主1")
    c.click("#filter")
    rows = d.find_elements(By.CSS_SELECTOR, "#records tbody tr")
    check(rows and all("户主1" in r.text for r in rows), "searching Chinese text finds only matching visits")
    c.open("/records/visit?unsent=1")
    check("张三" in c.text("#records") and "户主2号" not in c.text("#records"), "“未上传” lists what the hub does not have")
    c.open("/records/visit?visit_kind=院坝会")
    rows = d.find_elements(By.CSS_SELECTOR, "#records tbody tr")
    check(rows and all("院坝会" in r.text for r in rows), "filtering by kind of visit")
    c.open("/records/visit?conflict=1")
    check(d.find_elements(By.ID, "empty"), "no visit is in conflict")
    status, h, body = http("GET", app.url + "/records/visit/export.csv?q=" + urllib.parse.quote("户主1"), headers={"Cookie": cookie})
    text = body.decode("utf-8-sig")
    check(status == 200 and body.startswith(b"\xef\xbb\xbf") and "走访日期" in text and "户主1号" in text and "户主2号" not in text,
          "the filtered list exports to CSV for Excel (BOM, Chinese headers, the filter applied)")

    # --- Conflicts: listed and settled side by side.
    c.open("/conflicts")
    check("矛盾纠纷" in c.text("#conflicts"), "the offline edits' conflict is listed")
    c.shot("conflicts")
    link = d.find_element(By.CSS_SELECTOR, "#conflicts tbody a")
    c.follow(link)
    check(len(d.find_elements(By.CSS_SELECTOR, "#candidates tbody tr:first-child td")) >= 2, "the candidates stand side by side")
    c.shot("conflict")
    fits(c, "conflict")
    d.find_element(By.ID, "take-2").click()
    c.click("#resolve")
    check("冲突已处理" in c.text("#conflict-settled"), "the conflict is settled in the app")

    # --- Sync: the button runs a real sync; then a failed one leaves "last success" alone.
    # A visit in another township's village: the hub refuses it (out of scope).
    outside = w.add("a", "visit", {"village": "520221106201", "cadre_name": "王芳", "visit_date": "2026-11-21", "visit_kind": "回访", "household_head": "越界户"})
    c.open("/sync")
    pending = int(re.search(r"\d+", c.text("#sync-pending")).group(0))
    check(pending > 0, f"the sync page counts {pending} changes not yet at the hub")
    c.click("#sync-now")
    wait(d, lambda: d.find_elements(By.ID, "sync-done") or d.find_elements(By.ID, "sync-failed"), "the sync finishes", timeout=120)
    check(d.find_elements(By.ID, "sync-done"), "立即同步 ran a real sync: " + c.text("main")[:300])
    check(c.text("#sync-pending").startswith("0"), "nothing is left to send after the sync")
    check(c.text("#last-push") != "—" and c.text("#last-pull") != "—", "the last push and pull show their times")
    c.shot("sync")
    check("out_of_scope" in c.text("#refused"), "the sync page lists the change the hub refused")
    c.open("/record/" + outside)
    check("拒收" in c.text("#refused") and "out_of_scope" in c.text("#refused"), "the refused change is shown on its record with the hub's reason")
    c.shot("record-refused")
    d.execute_script("window.confirm = function () { return true; }")
    c.click("#delete")
    check(not d.find_elements(By.ID, "refused"), "after deleting the local record the refusal is no longer shown on it")
    c.open("/sync")
    check(not d.find_elements(By.ID, "refused"), "…nor on the sync page")
    # --- Pruned history comes back from the hub (docs/operations.md §10): laptop a edits a
    # dispute twice, syncs, and prunes as if 100 days had passed; the record page lists the
    # pruned edit without its value, and the button fetches it from the hub.
    kept = w.add("a", "dispute", {"village": "520221105201", "category": "邻里纠纷", "parties": "清理测试甲与乙",
                                  "summary": "因排水沟发生争执", "reported_on": "2026-11-20", "status": "受理"})
    for status in ["调解中", "已化解"]:
        w.cli("a", "record", "edit", kept, "--json", json.dumps({"status": status}, ensure_ascii=False))
    # (exit 3: the deleted out-of-scope visit above is still refused; the dispute goes.)
    subprocess.run([w.fs, "--db", app.db, "sync"], capture_output=True)
    run([w.fs, "--db", app.db, "prune"], env={**os.environ, "FIELDSYNC_CLOCK_SKEW_MS": str(100 * 86_400_000)})
    c.open("/record/" + kept)
    check("已清理" in c.text("#history") and "调解中" not in c.text("#history"), "the record page lists the pruned edit without its value")
    c.click("#fetch-history")
    check("取回 1 条" in c.text("#fetched"), "the button fetched the pruned edit from the hub: " + c.text("main")[:200])
    check("调解中" in c.text("#history") and "已清理" not in c.text("#history"), "the history shows the old value again")
    c.open("/sync")
    last = c.text("#last-success")
    w.stop()
    c.click("#sync-now")
    wait(d, lambda: d.find_elements(By.ID, "sync-done") or d.find_elements(By.ID, "sync-failed"), "the failed sync finishes", timeout=180)
    check("连不上同步中心" in c.text("#sync-failed"), "a failed sync says in Chinese what is wrong and what to do")
    check(c.text("#last-success") == last, "a failed sync does not change the last success")
    c.shot("sync-failed")

    # --- Files: a bundle out and back in through the page.
    status, h, body = http("GET", app.url + "/files/export.bundle", headers={"Cookie": cookie})
    check(status == 200 and body[:2] == b"\x1f\x8b" and "attachment" in h.get("Content-Disposition", ""), "the bundle downloads (gzip)")
    other = os.path.join(w.tmp, "b-export.bundle")
    w.cli("b", "bundle", "export", other)
    c.open("/files")
    c.shot("files")
    d.find_element(By.ID, "bundle-file").send_keys(other)
    c.click("#import-bundle")
    check("已导入数据包" in c.text("#imported"), "a bundle from a USB stick imports through the page")

    # --- A CSV ledger: previewed, imported, and imported again without duplicates.
    ledger = os.path.join(w.tmp, "台账.csv")
    with open(ledger, "w", encoding="utf-8-sig", newline="") as f:
        f.write("村(社区)代码,项目名称,项目类别,项目状态,预算金额(元)\r\n"
                "520221105201,村集体茶叶加工厂,集体经济,完工,\"1,500,000\"\r\n"  # exists: an update of its status
                "520221105203,岩脚村饮水工程,基础设施,规划,12.5万\r\n"           # new
                "520221105203,坏行,不知道,规划,100\r\n")                           # wrong kind of project
    def preview():
        c.open("/files")
        choose(d, "csv-kind", value="project")
        d.find_element(By.ID, "csv-file").send_keys(ledger)
        c.click("#csv-preview")
        return c.text("#csv-summary")
    before = len(app.records("project"))
    summary = preview()
    check("新增 1 条" in summary and "更新 1 条" in summary and "有误 1 行" in summary, "the preview shows what is added, updated and wrong: " + summary)
    check(len(app.records("project")) == before, "the preview writes nothing")
    c.shot("csv-preview")
    c.click("#csv-apply")
    check("新增 1 条，更新 1 条" in c.text("#csv-imported"), "confirming imports the good rows")
    check(app.sql("SELECT budget_fen, status FROM project WHERE name = '岩脚村饮水工程'") == [(12_500_000, "规划")], "12.5万 in a (元) column is 12,500,000 分")
    check(app.sql("SELECT status FROM project WHERE name = '村集体茶叶加工厂'") == [("完工",)], "the existing project found by its natural key was updated")
    summary = preview()
    check("新增 0 条" in summary and "更新 0 条" in summary and "已有且相同 2 条" in summary, "the same file again adds and changes nothing: " + summary)
    check(len(app.records("project")) == before + 1, "one project more in all")


def daemon_serves(w):
    """`fieldsync daemon` serves the same app beside its sync loop."""
    log = os.path.join(w.tmp, "daemon.log")
    p = subprocess.Popen([w.fs, "--db", os.path.join(w.tmp, "b.sqlite"), "daemon", "--interval", "3600", "--app-port", "0"],
                         stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        for _ in range(300):
            m = re.search(r"http://127\.0\.0\.1:(\d+)/open\?t=[0-9a-f-]+", open(log).read())
            if m:
                break
            time.sleep(0.1)
        else:
            raise Failure("the daemon did not print the app's link: " + open(log).read()[-500:])
        status, _, body = http("GET", m.group(0))
        check(status == 200 and "进入工作台" in body.decode(), "the daemon serves the app and logs a one-time link")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)


def drafts_survive(app, w, shots):
    """A draft typed, then the browser killed and the app SIGKILLed: offered back afterwards."""
    d = browser()
    try:
        d.get(app.new_link())
        c = Console(d, app.url, shots)
        wait(d, lambda: c.path() == "/", "the new link opens the app")
        c.open("/records/dispute/new")
        key = d.find_element(By.NAME, "key").get_attribute("value")
        d.find_element(By.ID, "f-parties").click()
        d.execute_cdp_cmd("Input.insertText", {"text": "王某与刘某"})
        wait(d, lambda: app.sql("SELECT 1 FROM fs_app_draft WHERE key = ? AND fields LIKE ?", key, "%王某与刘某%"), "the draft is saved")
    finally:
        d.quit()  # the browser goes without a word
    app.kill()
    app.start()
    d = browser()
    try:
        c = Console(d, app.url, shots)
        d.get(app.link)
        wait(d, lambda: c.path() == "/", "the restarted app opens")
        check("未提交的草稿" in c.text("#drafts-title"), "after a killed browser and app the home page offers the draft")
        c.shot("drafts")
        c.follow(d.find_element(By.CSS_SELECTOR, f"#drafts a[href*='{key}']"))
        check(d.find_element(By.ID, "f-parties").get_attribute("value") == "王某与刘某", "the draft comes back into the form")
    finally:
        d.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="app-test.")
    w = app = d = None
    started = time.time()
    try:
        w = World(args.bin, tmp)
        print(f"app-test: hub at {w.url}, filling it through the CLI…", flush=True)
        w.fill()
        app = App(w)
        app.start()
        print(f"app-test: app at {app.url}; starting Chromium", flush=True)
        security(app, w)
        d = browser()
        journey(Console(d, app.url, args.shots), app, w)
        d.quit()
        d = None
        drafts_survive(app, w, args.shots)
        daemon_serves(w)
        print(f"app-test: all {len(checks)} checks passed in {time.time() - started:.0f} s")
        return 0
    except Exception as e:
        return report_failure("app-test", e, d, {"app": os.path.join(tmp, "app.log"), "hub": os.path.join(tmp, "hub.log")})
    finally:
        if d is not None:
            d.quit()
        if app is not None:
            app.stop()
        if w is not None:
            w.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
