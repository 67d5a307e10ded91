#!/usr/bin/env bash
# Does monitoring slow the write path? One run, two otherwise identical
# three-region Meridian datastores (QUIC + mutual TLS, `meridian serve
# --region FILE` x3):
#   on:  region files with `[listen] metrics`; a scraper GETs the primary's
#        and both secondaries' /metrics every SCRAPE_EVERY seconds during the
#        benchmark (Prometheus scrapes every 15-60 s: this is harsher);
#   off: the same files without `metrics` (no HTTP endpoint, no scrapes).
# Lag is recorded by the replication links in both (it is part of the
# protocol, not of the endpoint), and events are watched in both.
#   1. SET throughput of the primary with its two secondaries attached
#      (redis-benchmark -t set -c 50 -n N -r 100000 at each of PIPELINES),
#      on and off alternating for ROUNDS rounds; medians and on/off ratio
#      (target >= 0.98);
#   2. scrape time: SCRAPES sequential GET /metrics of each region of the
#      "on" datastore right after a write load (curl's time_total):
#      p50 / p99 / max ms (target < 5 ms).
# Primaries on SERVER_CPU, redis-benchmark on CLIENT_CPU, secondaries and
# the scraper unpinned. Nothing is asserted; exit 1 if a step failed, 2 on a
# usage or environment error. Every server started here is killed on exit.
#
# Environment (defaults in brackets):
#   N [1000000]  PIPELINES [16 1]  ROUNDS [3]  SCRAPES [100]
#   SCRAPE_EVERY seconds between scrapes during the benchmark [0.2]
#   MERIDIAN_BIN [<repo>/target/release/meridian]
#   SERVER_CPU / CLIENT_CPU [0 / 1]
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly HOST=127.0.0.1
N="${N:-1000000}"
PIPELINES="${PIPELINES:-16 1}"
PIPELINES="${PIPELINES//,/ }"
ROUNDS="${ROUNDS:-3}"
SCRAPES="${SCRAPES:-100}"
SCRAPE_EVERY="${SCRAPE_EVERY:-0.2}"
MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
REGIONS=(us-east-1 eu-west-1 ap-southeast-1)

die() { echo "error: $*" >&2; exit 2; }
note() { echo "- $*"; }  # Markdown, ready to paste into RESULTS.md
[[ "${1:-}" == --help || "${1:-}" == -h ]] && { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }
[[ -x "$MERIDIAN_BIN" ]] || die "no $MERIDIAN_BIN (cargo build --release -p meridian)"
for t in redis-benchmark redis-cli curl taskset python3; do
    command -v "$t" >/dev/null || die "$t not found"
done

WORK="$(mktemp -d /tmp/meridian-metrics-bench.XXXXXX)"
declare -a PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
: >"$WORK/failures"
fail() { echo "$*" >>"$WORK/failures"; echo "- **FAILED:** $*"; }

free_port() {  # a free TCP or UDP port (python binds port 0)
    python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}

declare -A CLIENT=() METRICS=()
datastore() {  # datastore TAG with|without: region files, certs, three nodes
    local tag="$1" dir="$WORK/$1" r peers other role
    mkdir -p "$dir"
    declare -A REPL=()
    for r in "${REGIONS[@]}"; do
        CLIENT[$tag-$r]="$(free_port tcp)"; REPL[$r]="$(free_port udp)"; METRICS[$tag-$r]="$(free_port tcp)"
    done
    "$MERIDIAN_BIN" certs "$dir/certs" --regions "$(IFS=,; echo "${REGIONS[*]}")" >/dev/null
    for r in "${REGIONS[@]}"; do
        peers=""
        for other in "${REGIONS[@]}"; do
            [[ "$other" == "$r" ]] || peers+="$other = \"$HOST:${REPL[$other]}\""$'\n'
        done
        role=secondary; [[ "$r" == "${REGIONS[0]}" ]] && role=primary
        {
            printf '[region]\nname = "%s"\nrole = "%s"\n\n[listen]\n' "$r" "$role"
            printf 'client = "%s:%s"\nreplication = "%s:%s"\n' "$HOST" "${CLIENT[$tag-$r]}" "$HOST" "${REPL[$r]}"
            [[ "$2" == with ]] && printf 'metrics = "%s:%s"\n' "$HOST" "${METRICS[$tag-$r]}"
            printf '\n[replication]\nprimary = "%s"\n\n[peers]\n%s\n' "${REGIONS[0]}" "$peers"
            printf '[tls]\nca = "certs/ca.pem"\ncert = "certs/%s.pem"\nkey = "certs/%s-key.pem"\n\n' "$r" "$r"
            printf '[options]\nmaxmemory = "4gb"\nmaxmemory-policy = "noeviction"\n'
        } >"$dir/$r.toml"
    done
    for r in "${REGIONS[@]}"; do
        if [[ "$r" == "${REGIONS[0]}" ]]; then
            taskset -c "$SERVER_CPU" "$MERIDIAN_BIN" serve --region "$dir/$r.toml" >"$dir/$r.log" 2>&1 &
        else
            "$MERIDIAN_BIN" serve --region "$dir/$r.toml" >"$dir/$r.log" 2>&1 &
        fi
        PIDS+=($!)
        local i
        for (( i = 0; i < 200; i++ )); do
            redis-cli -p "${CLIENT[$tag-$r]}" PING 2>/dev/null | grep -q PONG && break
            sleep 0.05
        done
    done
    for r in "${REGIONS[@]:1}"; do
        local i
        for (( i = 0; i < 600; i++ )); do
            redis-cli -p "${CLIENT[$tag-$r]}" INFO replication 2>/dev/null | grep -q 'master_link_status:up' && break
            sleep 0.05
        done
        redis-cli -p "${CLIENT[$tag-$r]}" INFO replication | grep -q 'master_link_status:up' \
            || { fail "$tag/$r: link not up"; return 1; }
    done
}

scraper() {  # scraper TAG: GET every region's /metrics every SCRAPE_EVERY s, forever
    local r
    while :; do
        for r in "${REGIONS[@]}"; do
            curl -s -o /dev/null "http://$HOST:${METRICS[$1-$r]}/metrics" || true
        done
        sleep "$SCRAPE_EVERY"
    done
}

rps() {  # rps TAG P: one redis-benchmark run against TAG's primary
    taskset -c "$CLIENT_CPU" timeout $(( 30 + N / 5000 )) redis-benchmark -h "$HOST" \
        -p "${CLIENT[$1-${REGIONS[0]}]}" -t set -c 50 -n "$N" -r 100000 -P "$2" -q --csv \
        | awk -F'"' '/^"SET"/ { print $4 }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "## Metrics on vs off — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo
note "command: \`N=$N PIPELINES=\"$PIPELINES\" ROUNDS=$ROUNDS SCRAPES=$SCRAPES SCRAPE_EVERY=$SCRAPE_EVERY benches/metrics_compare.sh\`"
note "meridian: $("$MERIDIAN_BIN" --version) ($MERIDIAN_BIN, built $(date -u -r "$MERIDIAN_BIN" '+%Y-%m-%d %H:%M:%S')), repo at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty)"
note "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
datastore on with || true
datastore off without || true
scraper on & SCRAPER=$!; PIDS+=("$SCRAPER")

echo "### 1. SET throughput, primary with 2 secondaries (redis-benchmark -t set -c 50 -n $N -r 100000), metrics on (scraped every ${SCRAPE_EVERY}s) vs off"
echo
echo "| pipeline | rps on (runs) | rps off (runs) | median on | median off | **on/off** | target |"
echo '|---|---|---|---:|---:|---:|---|'
for p in $PIPELINES; do
    on=(); off=()
    for (( round = 1; round <= ROUNDS; round++ )); do
        # Alternate which goes first, so drift favours neither.
        for mode in $( (( round % 2 )) && echo "on off" || echo "off on"); do
            v="$(rps "$mode" "$p" || true)"
            [[ -n "$v" ]] || { fail "redis-benchmark $mode -P $p round $round"; continue; }
            if [[ "$mode" == on ]]; then on+=("$v"); else off+=("$v"); fi
        done
    done
    mon="$(median "${on[@]}")"; moff="$(median "${off[@]}")"
    r="$(awk -v a="$mon" -v b="$moff" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else print "-" }')"
    echo "| $p | ${on[*]} | ${off[*]} | $mon | $moff | **$r** | ≥ 0.98 |"
done
kill "$SCRAPER" 2>/dev/null || true
echo

echo "### 2. Scrape time: $SCRAPES sequential GET /metrics per region (curl time_total, new connection each)"
echo
echo "| region | role | bytes | p50 ms | p99 ms | max ms | target |"
echo '|---|---|---:|---:|---:|---:|---|'
for r in "${REGIONS[@]}"; do
    url="http://$HOST:${METRICS[on-$r]}/metrics"
    bytes="$(curl -s "$url" | wc -c)"
    for (( i = 0; i < SCRAPES; i++ )); do
        curl -s -o /dev/null -w '%{time_total}\n' "$url"
    done | sort -g | awk -v r="$r" -v b="$bytes" -v role="$([[ "$r" == "${REGIONS[0]}" ]] && echo primary || echo secondary)" '
        { v[NR] = $1 * 1000 }
        END { i99 = int(NR * 0.99 + 0.999); printf "| %s | %s | %d | %.3f | %.3f | %.3f | < 5 |\n", r, role, b, v[int((NR + 1) / 2)], v[i99], v[NR] }'
done
echo
note "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -s "$WORK/failures" ]]; then
    echo; echo "FAILED steps:"; sed 's/^/  - /' "$WORK/failures"; exit 1
fi
note "all steps completed"
