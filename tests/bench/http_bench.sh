#!/usr/bin/env bash
# HTTP benchmark (issue: catalog slice): flora's GET /api/v1/products (first page of 24)
# and GET /api/v1/products/{slug} under wrk with keep-alive, beside the same JSON bodies
# served as static files by nginx with the same wrk settings (nginx is the practical
# ceiling for a JSON response on this machine). Prints requests/s and the ratio; asserts
# nothing. Usage: tests/bench/http_bench.sh [CATALOG_FILE] (default: demo/catalog.json,
# or the Flowwow file when ../shared has it).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup bench
build=${FLORA_BUILD_DIR:-build/bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLORA_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target flora >/dev/null
catalog=${1:-}
if [ -z "$catalog" ]; then
  if [ -f ../shared/catalog/flowwow/catalog.csv ]; then catalog=../shared/catalog/flowwow/catalog.csv; else catalog=demo/catalog.json; fi
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export FLORA_STORE_URI="sqlite:$work/flora.db" FLORA_LOG_LEVEL=warn
threads=${WRK_THREADS:-2} conns=${WRK_CONNECTIONS:-32} secs=${WRK_SECONDS:-10}
"$build/flora" migrate up >/dev/null
"$build/flora" import catalog "$catalog" >/dev/null
port=18080; nport=18081
"$build/flora" serve --port $port --threads ${FLORA_THREADS:-4} 2>"$work/flora.log" &
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
list="/api/v1/products"
slug=$(curl -fs "http://127.0.0.1:$port$list?pageSize=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["slug"])')
one="/api/v1/products/$slug"
mkdir -p "$work/www/api/v1/products"
curl -fs "http://127.0.0.1:$port$list" >"$work/www/list.json"
curl -fs "http://127.0.0.1:$port$one" >"$work/www/one.json"
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    default_type application/json;
    location = $list { alias $work/www/list.json; }
    location = $one { alias $work/www/one.json; }
  }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$nport$list" >/dev/null && break; sleep 0.1; done
rps() { wrk -t"$threads" -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
printf 'catalog: %s; wrk -t%s -c%s -d%ss, keep-alive; body sizes: list %s B, product %s B\n' \
  "$catalog" "$threads" "$conns" "$secs" "$(wc -c <"$work/www/list.json")" "$(wc -c <"$work/www/one.json")"
printf '%-34s %12s %12s %8s\n' endpoint flora_rps nginx_rps ratio
for path in "$list" "$one"; do
  f=$(rps "http://127.0.0.1:$port$path"); n=$(rps "http://127.0.0.1:$nport$path")
  printf '%-34s %12s %12s %8s\n' "${path:0:34}" "$f" "$n" "$(python3 -c "print(f'{$f/$n:.2f}')")"
done
