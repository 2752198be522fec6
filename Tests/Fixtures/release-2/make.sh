#!/usr/bin/env bash
# Makes the release-2 fixtures (the formats of 2026-12: signed provenance, the token and key in
# REPLICA.secret, the app's tables) with that release's binaries (B=folder of fieldsync,
# fieldsync-hub): a hub with one device and one supervisor; a laptop enrolled there with a
# dispute and a visit synced, an edit and a project (money in 分) not yet sent, and a draft.
# Later releases open, sync and check them (ReleaseTwoFixtureSpec). Never regenerate them with
# a later release: they stand for files made by this one.
set -euo pipefail
B=${B:?}; out=${1:?}
mkdir -p "$out"; cd "$out"
rm -f hub.sqlite* laptop.sqlite*
port=$((20000 + RANDOM % 20000))
$B/fieldsync-hub init --db hub.sqlite --hub-name 同步中心 >/dev/null
code=$($B/fieldsync-hub device add --db hub.sqlite --name 王芳 --scope 520221105201 --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["code"])')
FIELDSYNC_SUPERVISOR_PASSWORD=fixture-password-2 $B/fieldsync-hub supervisor add --db hub.sqlite --name 陈主任 --scope 520221105 >/dev/null
$B/fieldsync-hub serve --db hub.sqlite --port $port > hub.log 2>&1 &
hub=$!
sleep 2
export FIELDSYNC_DB=$out/laptop.sqlite
$B/fieldsync init --site 牛角村-王芳的笔记本 --author 王芳 >/dev/null
$B/fieldsync enroll --hub http://127.0.0.1:$port --code "$code" >/dev/null
D=$($B/fieldsync record add dispute --json '{"village":"520221105201","category":"邻里纠纷","parties":"张某与李某","summary":"宅基地边界争执","reported_on":"2026-11-19","status":"受理"}')
$B/fieldsync record edit "${D: -8}" --json '{"status":"调解中","mediator_name":"王芳"}' >/dev/null
$B/fieldsync record add visit --json '{"village":"520221105201","household_head":"李大山","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"入户走访","topics":["就业","医疗"],"notes":"了解务工情况"}' >/dev/null
$B/fieldsync sync --quiet >/dev/null
# Left unsent: an edit and a new project; and a draft in the app's table.
$B/fieldsync record edit "${D: -8}" --json '{"status":"已化解","resolved_on":"2026-11-21"}' >/dev/null
$B/fieldsync record add project --json '{"village":"520221105201","name":"村集体茶叶加工厂","project_kind":"集体经济","status":"在建","budget_fen":12500000}' >/dev/null
sqlite3 laptop.sqlite "INSERT INTO fs_app_draft(key, kind, record, fields, updated) VALUES ('0123456789abcdef0123456789abcdef', 'visit', NULL, '{\"household_head\":\"王小二\",\"notes\":\"草稿：还没写完\"}', 1764547200000)"
kill $hub; wait $hub 2>/dev/null || true
sqlite3 hub.sqlite 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
sqlite3 laptop.sqlite 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
rm -f hub.log hub.sqlite-wal hub.sqlite-shm laptop.sqlite-wal laptop.sqlite-shm
ls -la
