#!/usr/bin/env bash
# Makes the release-1 fixtures with that release's binaries (B=folder of fieldsync, fieldsync-hub).
set -euo pipefail
B=${B:?}; out=${1:?}
mkdir -p "$out"; cd "$out"
port=$((20000 + RANDOM % 20000))
$B/fieldsync-hub device add --db hub.sqlite --name 王芳 --scope 520221105201 --json > dev.json 2>/dev/null || $B/fieldsync-hub device add --db hub.sqlite --name 王芳 --scope 520221105201 --json > dev.json
code=$(python3 -c 'import json;print(json.load(open("dev.json"))["code"])')
FIELDSYNC_SUPERVISOR_PASSWORD=fixture-password-1 $B/fieldsync-hub supervisor add --db hub.sqlite --name 陈主任 --scope 520221105 >/dev/null
$B/fieldsync-hub serve --db hub.sqlite --port $port > hub.log 2>&1 &
hub=$!
sleep 2
export FIELDSYNC_DB=$out/laptop.sqlite
$B/fieldsync init --site 牛角村-王芳的笔记本 --author 王芳 >/dev/null
$B/fieldsync enroll --hub http://127.0.0.1:$port --code "$code" >/dev/null
D=$($B/fieldsync record add dispute --json '{"village":"520221105201","category":"邻里纠纷","parties":"张某与李某","summary":"宅基地边界争执","reported_on":"2026-11-19","status":"受理"}')
$B/fieldsync record edit "$D" --json '{"status":"调解中","mediator_name":"王芳"}' >/dev/null
V=$($B/fieldsync record add visit --json '{"village":"520221105201","household_head":"李大山","cadre_name":"王芳","visit_date":"2026-11-20","visit_kind":"入户走访","topics":["就业","医疗"],"notes":"了解务工情况"}')
$B/fieldsync sync >/dev/null
# one more edit left unsent
$B/fieldsync record edit "$D" --json '{"status":"已化解","resolved_on":"2026-11-21"}' >/dev/null
kill $hub; wait $hub 2>/dev/null || true
rm -f dev.json hub.log
ls -la
