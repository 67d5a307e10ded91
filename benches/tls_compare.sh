#!/usr/bin/env bash
# Client TLS (issue 7): Meridian vs Redis, side by side, in one run.
#
# Both servers get the same certificates (made by `meridian certs`: a CA and a
# certificate for 127.0.0.1/localhost, used as server and client certificate),
# listen on a TLS port with client certificates required AND on a plain port,
# and are pinned to SERVER_CPU; redis-benchmark runs on CLIENT_CPU with
#   redis-benchmark --tls --cacert ca.pem --cert c.pem --key k.pem -t TESTS -P P
# (and the same without --tls on the plain port, so one run shows what TLS
# costs each server). Peers alternate per round; medians are reported.
#
# Environment (defaults in brackets):
#   N            requests per redis-benchmark run [1000000]
#   TESTS        redis-benchmark -t list [set,get]
#   PIPELINES    -P values, space-separated [16 1]
#   ROUNDS       rounds of (redis, meridian) alternation [3]
#   PLAIN=0      skip the plain-TCP runs
#   MERIDIAN_BIN [<repo>/target/release/meridian]   REDIS_BIN [redis-server]
#   SERVER_CPU / CLIENT_CPU   [0 / 1]
#   BENCH_TIMEOUT seconds per redis-benchmark run [120]
#
# Output is Markdown for benches/RESULTS.md. Every server started here is killed
# on exit; only 127.0.0.1 is used. Exit 1 if a run failed, 2 on a usage error.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${N:-1000000}"
TESTS="${TESTS:-set,get}"
PIPELINES="${PIPELINES:-16 1}"
ROUNDS="${ROUNDS:-3}"
PLAIN="${PLAIN:-1}"
MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-120}"

die() { echo "error: $*" >&2; exit 2; }
[[ $# -eq 0 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
for tool in redis-benchmark redis-cli taskset timeout awk "$REDIS_BIN" "$MERIDIAN_BIN"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$MERIDIAN_BIN" certs "$WORK/certs" --regions bench >/dev/null
CA="$WORK/certs/ca.pem" CERT="$WORK/certs/bench.pem" KEY="$WORK/certs/bench-key.pem"
TLS_ARGS=(--tls-cert-file "$CERT" --tls-key-file "$KEY" --tls-ca-cert-file "$CA")
CLI_TLS=(--tls --cacert "$CA" --cert "$CERT" --key "$KEY")

free_port() { # a port nothing listens on now
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 30000))
        redis-cli -p "$p" PING >/dev/null 2>&1 || { echo "$p"; return; }
    done
    die "no free port"
}

declare -A PORT TLS_PORT
start() { # start PEER: both listeners, pinned, waits for PONG on each
    local peer=$1 port tls argv
    port=$(free_port); tls=$(free_port)
    if [[ $peer == redis ]]; then
        argv=("$REDIS_BIN" --port "$port" --tls-port "$tls" --bind 127.0.0.1 --save "" --appendonly no "${TLS_ARGS[@]}")
    else
        argv=("$MERIDIAN_BIN" serve --port "$port" --tls-port "$tls" --bind 127.0.0.1 --save "" --appendonly no "${TLS_ARGS[@]}")
    fi
    ( cd "$WORK" && exec taskset -c "$SERVER_CPU" "${argv[@]}" ) >"$WORK/$peer.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do
        if [[ "$(redis-cli -p "$port" PING 2>/dev/null)" == PONG ]] &&
            [[ "$(redis-cli "${CLI_TLS[@]}" -p "$tls" PING 2>/dev/null)" == PONG ]]; then
            PORT[$peer]=$port; TLS_PORT[$peer]=$tls
            echo "- $peer: \`taskset -c $SERVER_CPU ${argv[*]}\`"
            return
        fi
        sleep 0.1
    done
    cat "$WORK/$peer.log" >&2
    die "$peer did not start"
}

echo "### Client TLS: meridian vs redis ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "- $(uname -srm), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $("$REDIS_BIN" --version | cut -d' ' -f1-3), meridian $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
busy=$(ps -eo pcpu=,comm= | awk '$1 > 20 { printf "%s(%s%%) ", $2, $1 }')
[[ -z "$busy" ]] || echo "- **machine busy** at start: $busy— treat ratios as indicative only"
start redis
start meridian
echo "- client: \`taskset -c $CLIENT_CPU redis-benchmark [--tls --cacert ca.pem --cert bench.pem --key bench-key.pem] -h 127.0.0.1 -p PORT -t $TESTS -P P -n $N --csv\`, $ROUNDS rounds, medians"
echo

failed=0
ROWS="$WORK/rows"
: >"$ROWS"
run() { # run PEER MODE PIPELINE: appends "mode pl test peer rps"
    local peer=$1 mode=$2 pl=$3 port extra=()
    if [[ $mode == tls ]]; then port=${TLS_PORT[$peer]}; extra=("${CLI_TLS[@]}"); else port=${PORT[$peer]}; fi
    if ! timeout "$BENCH_TIMEOUT" taskset -c "$CLIENT_CPU" redis-benchmark "${extra[@]}" -h 127.0.0.1 -p "$port" \
        -t "$TESTS" -P "$pl" -n "$N" -r 100000 --csv >"$WORK/out.csv" 2>"$WORK/err"; then
        echo "- $peer $mode -P $pl failed: $(tail -1 "$WORK/err")"; failed=1; return
    fi
    awk -F'","' -v peer="$peer" -v mode="$mode" -v pl="$pl" \
        'NR > 1 { gsub(/"/, "", $1); print mode, pl, $1, peer, $2 }' "$WORK/out.csv" >>"$ROWS"
}
modes=(tls); [[ $PLAIN == 1 ]] && modes+=(plain)
for round in $(seq "$ROUNDS"); do
    for pl in $PIPELINES; do
        for mode in "${modes[@]}"; do
            run redis "$mode" "$pl"
            run meridian "$mode" "$pl"
        done
    done
done

echo "| transport | pipeline | test | redis rps | meridian rps | ratio meridian/redis |"
echo "|---|---|---|---|---|---|"
awk '
    { key = $1 SUBSEP $2 SUBSEP $3; v[key, $4, ++n[key, $4]] = $5; keys[key] = 1 }
    function median(key, peer,   m, i, j, t, a) {
        m = n[key, peer]; for (i = 1; i <= m; i++) a[i] = v[key, peer, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        for (key in keys) {
            split(key, k, SUBSEP); r = median(key, "redis"); m = median(key, "meridian")
            printf "| %s | %s | %s | %.0f | %.0f | %.2f |\n", k[1], k[2], k[3], r, m, (r > 0 ? m / r : 0)
        }
    }' "$ROWS" | sort -t'|' -k2,2r -k3,3nr -k4,4r
echo
echo "ratio > 1: meridian is faster. Server CPU is the bottleneck: both are pinned to one core."
exit "$failed"
