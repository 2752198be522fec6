#!/usr/bin/env python3
"""An independent computation of the hub report (Protocol/reports.md), for the tests.

Reads the hub's SQLite file through the public views (visit, dispute, project, cadre, region)
and the hub tables (hub_device, fs_conflict, fs_change), record by record in Python: none of the
engine's SQL is reused. Then compares every figure of a report JSON produced by the hub.

  report-reference.py HUB.sqlite REPORT.json         compare; prints each mismatch, exit 1 if any
  report-reference.py HUB.sqlite REPORT.json --print print this script's own report JSON

The region, period, inactive days and generation time are taken from REPORT.json (the sync
figures are "as of" that moment).
"""
import json
import sqlite3
import sys
from collections import defaultdict
from datetime import date, datetime, timezone

VISIT_KINDS = ["入户走访", "回访", "院坝会", "群众会", "电话回访"]
MEETINGS = {"院坝会", "群众会"}
DISPUTE_CATEGORIES = ["土地承包", "邻里纠纷", "婚姻家庭", "征地拆迁", "山林权属", "劳资", "其他"]
DISPUTE_STATUSES = ["受理", "调解中", "已化解", "已上报", "未化解"]
OPEN = {"受理", "调解中"}
PROJECT_KINDS = ["产业发展", "基础设施", "公共服务", "集体经济"]
PROJECT_STATUSES = ["规划", "在建", "完工", "验收", "运营"]
NEXT_LEVEL = {2: 4, 4: 6, 6: 9, 9: 12}


def level(code):
    return {6: "县(区)", 9: "乡镇(街道)", 12: "村(社区)"}.get(len(code), "区划")


def day(s):
    return date.fromisoformat(s).toordinal()


def half_up_hundredths(n, d):
    """n/d with two decimals, rounded half up, as a float as JSON carries it (None if d == 0)."""
    if d == 0:
        return None
    q, r = divmod(n * 100, d)
    if 2 * r >= d:
        q += 1
    return q / 100


def median(values):
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    twice = 2 * s[n // 2] if n % 2 else s[n // 2 - 1] + s[n // 2]
    return twice // 2 if twice % 2 == 0 else twice / 2


def iso(ms):
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def compute(db_path, region, start, end, inactive_days, now_ms):
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    L = NEXT_LEVEL.get(len(region))
    inside = lambda code: code is not None and code.startswith(region)
    unit_of = lambda code: code[:L] if L and len(code) >= L else None
    in_period = lambda d: d is not None and start <= d <= end

    # Months of the period, each clamped to it.
    months = []
    y, m = int(start[:4]), int(start[5:7])
    while f"{y:04d}-{m:02d}" <= end[:7]:
        first = f"{y:04d}-{m:02d}-01"
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        last = date.fromordinal(nxt.toordinal() - 1).isoformat()
        months.append((f"{y:04d}-{m:02d}", max(first, start), min(last, end)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    month_keys = [k for k, _, _ in months]

    touched = set()  # units holding something counted

    def bucket_dict(factory):
        return {"total": factory(), "unit": defaultdict(factory), "month": defaultdict(factory)}

    # ---- visits
    def vzero():
        return {"visits": 0, "households": set(), "meetings": 0, "meetingAttendees": 0, "byKind": {k: 0 for k in VISIT_KINDS}}
    V = bucket_dict(vzero)
    visits = [dict(r) for r in con.execute("SELECT * FROM visit")]
    visits = [v for v in visits if inside(v["village"])]
    for v in visits:
        if not in_period(v["visit_date"]):
            continue
        u = unit_of(v["village"])
        targets = [V["total"], V["month"][v["visit_date"][:7]]]
        if u:
            touched.add(u)
            targets.append(V["unit"][u])
        hh = v["household_id"] if v["household_id"] is not None else (
            v["village"] + "/" + v["household_head"] if v["household_head"] not in (None, "") else None)
        for t in targets:
            t["visits"] += 1
            t["byKind"][v["visit_kind"]] += 1
            if v["visit_kind"] in MEETINGS:
                t["meetings"] += 1
                t["meetingAttendees"] += v["attendees"] or 0
            if hh is not None:
                t["households"].add(hh)

    def vjson(t):
        return {**t, "households": len(t["households"])}

    # ---- disputes
    def dzero():
        return {"received": 0, "receivedResolved": 0, "days": [], "stillOpen": 0, "byStatus": {s: 0 for s in DISPUTE_STATUSES}}
    D = bucket_dict(dzero)
    C = defaultdict(dzero)
    disputes = [dict(r) for r in con.execute("SELECT * FROM dispute") if inside(r["village"])]
    for d in disputes:
        u = unit_of(d["village"])
        if in_period(d["reported_on"]):
            ts = [D["total"], D["month"][d["reported_on"][:7]], C[d["category"]]] + ([D["unit"][u]] if u else [])
            if u:
                touched.add(u)
            for t in ts:
                t["received"] += 1
                t["byStatus"][d["status"]] += 1
                if d["status"] == "已化解":
                    t["receivedResolved"] += 1
        if d["status"] == "已化解" and in_period(d["resolved_on"]):
            took = day(d["resolved_on"]) - day(d["reported_on"])
            ts = [D["total"], D["month"][d["resolved_on"][:7]], C[d["category"]]] + ([D["unit"][u]] if u else [])
            if u:
                touched.add(u)
            for t in ts:
                t["days"].append(took)
        if d["status"] in OPEN and d["reported_on"] <= end:
            ts = [D["total"], C[d["category"]]] + ([D["unit"][u]] if u else [])
            if u:
                touched.add(u)
            for t in ts:
                t["stillOpen"] += 1
            for key, _, last in months:
                if d["reported_on"] <= last:
                    D["month"][key]["stillOpen"] += 1

    def djson(t):
        return {"received": t["received"], "receivedResolved": t["receivedResolved"],
                "resolutionRate": half_up_hundredths(100 * t["receivedResolved"], t["received"]),  # percent
                "resolved": len(t["days"]), "medianDaysToResolve": median(t["days"]),
                "stillOpen": t["stillOpen"], "byStatus": t["byStatus"]}

    # ---- projects
    def pzero():
        return {"projects": 0, "byKind": {k: 0 for k in PROJECT_KINDS}, "byStatus": {s: 0 for s in PROJECT_STATUSES},
                "budgetFen": 0, "spentFen": 0, "householdsBenefiting": 0, "started": 0, "completed": 0}
    P = bucket_dict(pzero)
    projects = [dict(r) for r in con.execute("SELECT * FROM project") if inside(r["village"])]

    def active(p, s, e):
        return p["started_on"] is not None and p["started_on"] <= e and (p["completed_on"] is None or p["completed_on"] >= s)

    def padd(t, p, s, e):
        t["projects"] += 1
        t["byKind"][p["project_kind"]] += 1
        t["byStatus"][p["status"]] += 1
        t["budgetFen"] += p["budget_fen"] or 0
        t["spentFen"] += p["spent_fen"] or 0
        t["householdsBenefiting"] += p["households_benefiting"] or 0
        t["started"] += 1 if p["started_on"] >= s else 0
        t["completed"] += 1 if p["completed_on"] is not None and s <= p["completed_on"] <= e else 0

    for p in projects:
        if active(p, start, end):
            padd(P["total"], p, start, end)
            u = unit_of(p["village"])
            if u:
                touched.add(u)
                padd(P["unit"][u], p, start, end)
        for key, s, e in months:
            if active(p, s, e):
                padd(P["month"][key], p, s, e)

    # ---- cadres
    cadres = [dict(r) for r in con.execute("SELECT * FROM cadre") if inside(r["village"])]
    cadres.sort(key=lambda c: c["id"])
    names = defaultdict(list)
    for c in cadres:
        names[c["name"]].append(c["id"])
    record_ids = {c["id"] for c in cadres}
    credited = defaultdict(list)  # key -> [(date, village)] for visits up to the period's end
    for v in visits:
        if v["visit_date"] > end:
            continue
        if v["cadre_id"] is not None:
            key = ("id", v["cadre_id"])
        elif len(names[v["cadre_name"]]) == 1:
            key = ("id", names[v["cadre_name"]][0])
        else:
            key = ("name", v["cadre_name"])
        credited[key].append(v)

    def on_post(c, d):
        return (c["started_on"] is None or c["started_on"] <= d) and (c["ended_on"] is None or c["ended_on"] >= d)

    def last_visit(key, upto):
        ds = [v["visit_date"] for v in credited.get(key, []) if v["visit_date"] <= upto]
        return max(ds) if ds else None

    def idle(key, d):
        lv = last_visit(key, d)
        return lv is None or day(lv) <= day(d) - inactive_days

    def czero():
        return {"cadres": 0, "visitors": set(), "visits": 0, "inactive": 0}
    K = bucket_dict(czero)
    cadre_list = []
    for c in cadres:
        key = ("id", c["id"])
        post = on_post(c, end)
        lazy = post and idle(key, end)
        u = unit_of(c["village"])
        if post:
            K["total"]["cadres"] += 1
            K["total"]["inactive"] += lazy
            if u:
                touched.add(u)
                K["unit"][u]["cadres"] += 1
                K["unit"][u]["inactive"] += lazy
        for mk, _, last in months:
            if on_post(c, last):
                K["month"][mk]["cadres"] += 1
                K["month"][mk]["inactive"] += idle(key, last)
        cadre_list.append({"id": c["id"], "name": c["name"], "region": c["village"], "onPost": post,
                           "visits": sum(1 for v in credited.get(key, []) if v["visit_date"] >= start),
                           "lastVisit": last_visit(key, end), "inactive": lazy})
    for key, vs in credited.items():
        period = [v for v in vs if v["visit_date"] >= start]
        for v in period:
            u = unit_of(v["village"])
            for t in [K["total"], K["month"][v["visit_date"][:7]]] + ([K["unit"][u]] if u else []):
                t["visitors"].add(key)
                t["visits"] += 1
            if u:
                touched.add(u)
        if period and not (key[0] == "id" and key[1] in record_ids):
            name = key[1] if key[0] == "name" else max(v["cadre_name"] for v in period)
            cadre_list.append({"id": key[1] if key[0] == "id" else None, "name": name,
                               "region": max(v["village"] for v in period), "onPost": False, "visits": len(period),
                               "lastVisit": max(v["visit_date"] for v in vs), "inactive": False})
    cadre_list.sort(key=lambda c: (c["region"], c["name"], c["id"] or ""))

    def cjson(t):
        n = len(t["visitors"])
        return {"cadres": t["cadres"], "visitingCadres": n, "visits": t["visits"],
                "visitsPerCadre": half_up_hundredths(t["visits"], n), "inactive": t["inactive"]}

    # ---- sync health
    def szero():
        return {"devices": 0, "awaitingEnrolment": 0, "revoked": 0, "neverSynced": 0, "syncs": [], "lags": [],
                "withErrors": 0, "pendingChanges": 0, "conflictsOpen": 0}
    S = bucket_dict(szero)
    devices = []
    changes = [dict(r) for r in con.execute("SELECT seq, row, peer FROM fs_change")]
    rows = sorted((dict(r) for r in con.execute("SELECT * FROM hub_device")), key=lambda d: (d["scope"], d["created"], d["id"]))
    for d in rows:
        if not inside(d["scope"]):
            continue
        status = "revoked" if d["revoked"] is not None else "awaiting enrolment" if d["enrolled"] is None else "enrolled"
        live = status == "enrolled"
        pending = sum(1 for c in changes if c["seq"] > d["pull_cursor"] and c["row"].startswith(d["scope"])
                      and (c["peer"] is None or c["peer"] != d["id"])) if live else 0
        lag = max(0, now_ms - d["last_sync"]) if live and d["last_sync"] is not None else None
        devices.append({"device": d["id"], "name": d["name"], "scope": d["scope"], "status": status,
                        "lastSync": iso(d["last_sync"]), "lastSeen": iso(d["last_seen"]), "lagMs": lag, "pending": pending,
                        "lastError": d["last_error"] if live else None, "lastErrorAt": iso(d["last_error_at"]) if live else None})
        u = unit_of(d["scope"])
        if u:
            touched.add(u)
        for t in [S["total"]] + ([S["unit"][u]] if u else []):
            if status == "revoked":
                t["revoked"] += 1
            elif status == "awaiting enrolment":
                t["awaitingEnrolment"] += 1
            else:
                t["devices"] += 1
                if d["last_sync"] is None:
                    t["neverSynced"] += 1
                else:
                    t["syncs"].append(d["last_sync"])
                if lag is not None:
                    t["lags"].append(lag)
                t["withErrors"] += d["last_error"] is not None
                t["pendingChanges"] += pending
    for r in con.execute("SELECT row FROM fs_conflict"):
        row = r["row"]
        if not row.startswith(region):
            continue
        S["total"]["conflictsOpen"] += 1
        u = row[:L] if L else None
        if u and len(u) == L and u.isdigit():
            touched.add(u)
            S["unit"][u]["conflictsOpen"] += 1

    def sjson(t):
        return {"devices": t["devices"], "awaitingEnrolment": t["awaitingEnrolment"], "revoked": t["revoked"],
                "neverSynced": t["neverSynced"], "lastSync": iso(max(t["syncs"])) if t["syncs"] else None,
                "oldestSync": iso(min(t["syncs"])) if t["syncs"] else None, "maxLagMs": max(t["lags"]) if t["lags"] else None,
                "withErrors": t["withErrors"], "pendingChanges": t["pendingChanges"], "conflictsOpen": t["conflictsOpen"]}

    # ---- regions and assembly
    region_names = {r["id"]: r["name"] for r in con.execute("SELECT id, name FROM region")}
    units = set(touched)
    if L:
        units |= {c for c in region_names if len(c) == L and c.startswith(region)}
    units = sorted(units)

    def section(B, zero, to_json, with_months=True):
        return {"total": to_json(B["total"]),
                "byUnit": [{"code": u, "name": region_names.get(u), **to_json(B["unit"].get(u, zero()))} for u in units],
                "byMonth": [{"month": k, **to_json(B["month"].get(k, zero()))} for k in month_keys] if with_months else []}

    return {
        "version": 1,
        "region": {"code": region, "name": region_names.get(region), "level": level(region)},
        "from": start, "to": end, "timeZone": "UTC", "inactiveDays": inactive_days,
        "units": [{"code": u, "name": region_names.get(u), "level": level(u)} for u in units],
        "months": month_keys,
        "visits": section(V, vzero, vjson),
        "disputes": section(D, dzero, djson),
        "disputeCategories": [{"category": c, **djson(C.get(c, dzero()))} for c in DISPUTE_CATEGORIES],
        "projects": section(P, pzero, lambda t: t),
        "cadres": section(K, czero, cjson),
        "cadreList": cadre_list,
        "sync": section(S, szero, sjson, with_months=False),
        "devices": devices,
    }


def compare(expected, actual, path, out):
    """Every leaf of `expected` against `actual`; returns the number of leaves compared."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.append(f"{path}: expected an object, the hub has {json.dumps(actual, ensure_ascii=False)[:80]}")
            return 1
        n = 0
        for k in sorted(set(expected) | set(actual)):
            if k == "generatedAt":
                continue
            if k not in actual:
                out.append(f"{path}.{k}: missing in the hub's report")
            elif k not in expected:
                out.append(f"{path}.{k}: not in the reference (an undocumented figure?)")
            else:
                n += compare(expected[k], actual[k], f"{path}.{k}", out)
        return n
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            out.append(f"{path}: expected {len(expected)} entries, the hub has {len(actual) if isinstance(actual, list) else actual!r}")
            return 1
        return sum(compare(e, a, f"{path}[{i}]", out) for i, (e, a) in enumerate(zip(expected, actual)))
    same = expected == actual and type(expected) is type(actual) or (
        isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(actual, (int, float))
        and not isinstance(actual, bool) and expected == actual)
    if not same:
        out.append(f"{path}: reference {json.dumps(expected, ensure_ascii=False)}, hub {json.dumps(actual, ensure_ascii=False)}")
    return 1


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 64
    db_path, report_path = sys.argv[1], sys.argv[2]
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    gen = report["generatedAt"]
    now_ms = int(datetime.strptime(gen, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000 + 0.5)
    ref = compute(db_path, report["region"]["code"], report["from"], report["to"], report["inactiveDays"], now_ms)
    if "--print" in sys.argv:
        print(json.dumps(ref, ensure_ascii=False, indent=1))
        return 0
    problems = []
    n = compare(ref, report, "report", problems)
    for p in problems:
        print(p)
    print(f"report-reference: {n} figures compared, {len(problems)} differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
