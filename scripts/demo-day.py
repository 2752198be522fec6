#!/usr/bin/env python3
"""Writes a realistic day of field records (JSON Lines) for one cadre, with text taken from the
seed articles in ../shared/seeds: visit notes, dispute summaries and project progress notes.

    scripts/demo-day.py SEEDS_DIR OUT_DIR VILLAGE CADRE SEED
"""
import glob, json, os, random, re, sys

seeds_dir, out, village, cadre, seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
rng = random.Random(seed)
sentences = []
for f in sorted(glob.glob(os.path.join(seeds_dir, "*.txt"))):
    text = open(f, encoding="utf-8").read()
    sentences += [s.strip() for s in re.split(r"(?<=[。！？])", text) if 20 <= len(s.strip()) <= 160]
if not sentences:
    sys.exit("no seed sentences found in " + seeds_dir)

surnames = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
given = "志刚 秀英 建国 桂兰 德明 玉梅 国强 春燕 永福 丽华 明亮 小红 文华 金花 海涛".split()
def name(): return rng.choice(surnames) + rng.choice(given)
def notes(n): return "".join(rng.choice(sentences) for _ in range(n))

visits = []
for i in range(rng.randint(8, 14)):
    kind = rng.choice(["入户走访"] * 5 + ["回访", "电话回访", "院坝会"])
    v = {"village": village, "household_head": name(), "cadre_name": cadre, "visit_date": "2026-11-20",
         "visit_kind": kind, "topics": rng.sample(["政策宣传", "民意收集", "矛盾排查", "帮扶措施", "就业", "医疗", "教育", "住房", "产业发展"], 2),
         "notes": notes(rng.randint(2, 5)), "needs": rng.choice(["希望硬化通组路", "孩子上学有困难，申请助学", "想参加茶叶种植培训", "老人看病报销慢", ""]),
         "follow_up_done": False}
    if kind == "院坝会":
        v["attendees"] = rng.randint(20, 60)
    if v["needs"]:
        v["follow_up"] = "报乡镇相关部门协调"
        v["follow_up_due"] = "2026-12-%02d" % rng.randint(1, 28)
    else:
        del v["needs"]
    visits.append(v)

disputes = [{"village": village, "category": rng.choice(["土地承包", "邻里纠纷", "婚姻家庭", "山林权属"]),
             "parties": name() + "与" + name(), "summary": notes(2), "reported_on": "2026-11-20",
             "status": "调解中", "mediator_name": cadre} for _ in range(2)]
projects = [{"village": village, "name": rng.choice(["茶叶加工厂", "通组路硬化", "村级光伏电站", "集体养牛场"]),
             "project_kind": "产业发展", "funding_source": "帮扶单位", "budget_fen": rng.randint(50, 300) * 1_000_000,
             "spent_fen": rng.randint(5, 40) * 1_000_000, "status": "在建", "started_on": "2026-09-15", "households_benefiting": rng.randint(20, 180),
             "lead_unit": "县农业农村局", "progress_notes": notes(1)}]

os.makedirs(out, exist_ok=True)
for kind, rows in [("visit", visits), ("dispute", disputes), ("project", projects)]:
    with open(os.path.join(out, kind + ".jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"{len(visits)} visits, {len(disputes)} disputes, {len(projects)} project for {cadre} in {village}")
