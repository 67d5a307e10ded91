#!/usr/bin/env bash
# Meridian promotion vs Redis 7 failover, side by side, under a steady write
# load (issue 6, "Speed"):
#   1. planned switchover, SWITCHOVERS times alternating between two nodes
#      (Meridian: `meridian promote REGION --regions DIR`, us-east-1 <->
#      eu-west-1; Redis: `FAILOVER TO host port` on the primary): the write
#      pause clients see (longest gap between two acknowledged writes around
#      each switchover) p50 and max, Meridian's own "writes paused" figure,
#      when the target answers as primary, and when the third node is back in
#      sync; afterwards every acknowledged write on every node, digests, and
#      the full/partial resyncs served;
#   2. forced failover, FORCED_ROUNDS rounds on a fresh datastore each: SIGKILL
#      the primary, then (a) Redis: `REPLICAOF NO ONE` on replica 1 and
#      `REPLICAOF host port1` on replica 2; (b) Meridian over RESP, the same
#      shape: `MERIDIAN PROMOTE FORCE` on eu-west-1 and `MERIDIAN FOLLOW
#      eu-west-1` on ap-southeast-1; (c) Meridian's CLI, `meridian promote
#      eu-west-1 --force --regions DIR`: time until the new primary accepts a
#      write and until the third node is in sync (link up, epoch equal, at or
#      past the new primary's position), medians.
#
# Probe: target/release/meridian-failover-probe (crates/relay). `load` sends
# one SET at a time at RATE/s to whichever node is the primary; on -TRYAGAIN,
# -READONLY or a broken connection it polls every node (Meridian: MERIDIAN
# STATE, Redis: INFO replication) and retries the same key on the primary.
# `failover` times the steps of one failover from one client's point of view.
#
# Topologies: Redis is redis-server + 2 x `redis-server --replicaof`; Meridian
# is three `meridian serve --region FILE` nodes (QUIC + mutual TLS, certs by
# `meridian certs`), as in repl_compare.sh. The servers are not pinned (the
# primary role moves between them; pinning one node would favour whichever
# role it holds); the load probe is pinned to CLIENT_CPU. Ports are picked
# free at run time (TCP and UDP).
#
# Nothing is asserted: the targets are printed beside the figures.
# Every wait is bounded and every server started here is killed on exit.
# Exit status: 0 when both peers completed every part, 1 when a step failed
# (the rest still runs and prints), 2 on a usage or environment error.
#
# Environment (defaults in brackets):
#   SWITCHOVERS    planned switchovers per peer [20]
#   FORCED_ROUNDS  forced failovers per peer and variant [5]
#   RATE           SET/s of the load probe [10000]
#   GAP_US         the probe also reports gaps between acknowledged writes of
#                  at least this many µs with no error (the jitter floor) [1000]
#   SETTLE_MS      pause between switchovers (and load before the first) [500]
#   PROMOTE_TIMEOUT_MS  meridian promote --timeout-ms [5000]
#   PEERS          which peers to run, space-separated [redis meridian]
#   SKIP_PLANNED=1 / SKIP_FORCED=1   skip a part
#   MERIDIAN_BIN   meridian binary [<repo>/target/release/meridian]
#   PROBE_BIN      the probe [<repo>/target/release/meridian-failover-probe]
#                  (cargo build --release -p relay --bin meridian-failover-probe)
#   REDIS_SERVER   [redis-server]
#   CLIENT_CPU     CPU of the load probe [1]
#   START_TIMEOUT  seconds to wait for a server to answer PING [20]
#   SYNC_TIMEOUT   seconds for secondaries to link up or catch up [30]
#   OUT_DIR        keep logs, probe outputs and region files here (default: temp, removed)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly HOST=127.0.0.1

SWITCHOVERS="${SWITCHOVERS:-20}"
FORCED_ROUNDS="${FORCED_ROUNDS:-5}"
RATE="${RATE:-10000}"
GAP_US="${GAP_US:-1000}"
SETTLE_MS="${SETTLE_MS:-500}"
PROMOTE_TIMEOUT_MS="${PROMOTE_TIMEOUT_MS:-5000}"
PEERS="${PEERS:-redis meridian}"
SKIP_PLANNED="${SKIP_PLANNED:-0}"
SKIP_FORCED="${SKIP_FORCED:-0}"
MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
PROBE_BIN="${PROBE_BIN:-$ROOT/target/release/meridian-failover-probe}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
CLIENT_CPU="${CLIENT_CPU:-1}"
START_TIMEOUT="${START_TIMEOUT:-20}"
SYNC_TIMEOUT="${SYNC_TIMEOUT:-30}"
# Issue 6's targets.
readonly T_PAUSE_P50=20 T_PAUSE_MAX=100 T_ACCEPT=10 T_SYNC=50

die() { echo "error: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; die "no arguments expected; configure with the environment variables above" ;;
esac
note() { echo "- $*"; }  # output is Markdown, ready to paste into RESULTS.md
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

for v in SWITCHOVERS FORCED_ROUNDS RATE GAP_US SETTLE_MS PROMOTE_TIMEOUT_MS START_TIMEOUT SYNC_TIMEOUT; do
    is_uint "${!v}" && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
(( SWITCHOVERS <= 1000 && FORCED_ROUNDS <= 100 )) || die "SWITCHOVERS must be ≤ 1000 and FORCED_ROUNDS ≤ 100"
(( RATE <= 200000 )) || die "RATE must be at most 200000"
for p in $PEERS; do [[ "$p" == redis || "$p" == meridian ]] || die "PEERS: unknown peer '$p'"; done
for tool in redis-cli taskset timeout awk ss "$REDIS_SERVER"; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH"
done
[[ -x "$PROBE_BIN" ]] || die "probe not built: $PROBE_BIN (cargo build --release -p relay --bin meridian-failover-probe)"

# ---------------------------------------------------------------- bookkeeping

if [[ -n "${OUT_DIR:-}" ]]; then
    mkdir -p "$OUT_DIR"; WORK="$(cd "$OUT_DIR" && pwd)"; KEEP_WORK=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/meridian-promote-bench.XXXXXX")"; KEEP_WORK=0
fi
declare -A PID=() PORT=() LOG=()
USED_PORTS=()
: >"$WORK/failures"
exec 3>&1
fail() { echo "$*" >>"$WORK/failures"; echo "- **FAILED:** $*" >&3; }

stop_server() {
    local name="$1" pid="${PID[$1]:-}" i
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for (( i = 0; i < 50; i++ )); do   # up to 5 s for a clean exit
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

kill_server() {  # kill_server KEY: SIGKILL, no grace
    local pid="${PID[$1]:-}"
    [[ -n "$pid" ]] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$1]"
}

stop_all() { local name; for name in "${!PID[@]}"; do stop_server "$name"; done; }

LOAD_PID=""  # the running load probe (its `timeout` wrapper), if any

cleanup() {
    [[ -n "$LOAD_PID" ]] && kill -TERM "$LOAD_PID" 2>/dev/null
    stop_all
    if [[ "$KEEP_WORK" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port: sets FREE_PORT to a port free for TCP and UDP, not handed out
# before in this run, below the kernel's ephemeral range.
free_port() {
    local p i lo=20000 hi
    hi="$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    (( hi > lo + 1000 )) || { lo=10000; hi=20000; }
    for (( i = 0; i < 500; i++ )); do
        p=$(( lo + RANDOM % (hi - lo) ))
        [[ " ${USED_PORTS[*]} " == *" $p "* ]] && continue
        (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null && continue
        [[ -z "$(ss -Hlnu "sport = :$p" 2>/dev/null)" ]] || continue
        USED_PORTS+=("$p"); FREE_PORT="$p"; return 0
    done
    return 1
}

cli() {  # cli PORT ARGS...  — one bounded redis-cli call, reply on stdout
    local port="$1"; shift
    { timeout 10 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null || true; } | tr -d '\r'
}

field() {  # field PORT SECTION NAME: one INFO field ("" if missing)
    cli "$1" INFO "$2" | awk -F: -v f="$3" '$1 == f { v = $2 } END { print v }'
}

now_ns() { date +%s%N; }

# start_proc KEY PORT CWD ARGV...: start a server in CWD, wait for its PONG.
start_proc() {
    local key="$1" port="$2" cwd="$3" deadline reply log
    shift 3
    log="$WORK/$key.log"
    mkdir -p "$cwd"
    ( cd "$cwd" && exec "$@" ) >"$log" 2>&1 &
    PID[$key]=$!; PORT[$key]=$port; LOG[$key]=$log
    deadline=$(( SECONDS + START_TIMEOUT ))
    while (( SECONDS < deadline )); do
        if ! kill -0 "${PID[$key]}" 2>/dev/null; then
            local rc=0
            wait "${PID[$key]}" 2>/dev/null || rc=$?
            unset "PID[$key]"
            fail "$key: exited with status $rc before answering PING (log: $(tail -n 3 "$log" | tr '\n' ' '))"
            return 1
        fi
        reply="$(timeout 2 redis-cli -h "$HOST" -p "$port" PING 2>/dev/null | tr -d '\r' || true)"
        [[ "$reply" == PONG ]] && return 0
        sleep 0.1
    done
    fail "$key: no PONG on $HOST:$port within ${START_TIMEOUT}s (log: $log)"
    stop_server "$key"; return 1
}

alive() { [[ -n "${PID[$1]:-}" ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

# --- topologies. Node keys: T-n0 (primary at start), T-n1 (the promotion
# target), T-n2 (the third node), for a topology tag T.

REDIS_ARGS=(--bind "$HOST" --save "" --appendonly no --daemonize no --logfile ""
            --enable-debug-command local)
REGIONS=(us-east-1 eu-west-1 ap-southeast-1)
declare -A M_CLIENT=() M_REPL=()
CERTS_MADE=0

make_certs() {
    (( CERTS_MADE )) && return 0
    timeout 60 "$MERIDIAN_BIN" certs "$WORK/certs" >"$WORK/certs.log" 2>&1 \
        || { fail "meridian certs: $(tail -n 3 "$WORK/certs.log" | tr '\n' ' ')"; return 1; }
    CERTS_MADE=1
}

meridian_ds() {  # meridian_ds TAG: region files in $WORK/ds-TAG, fresh ports
    local tag="$1" dir="$WORK/ds-$1" r o role peers
    [[ -x "$MERIDIAN_BIN" ]] || { fail "meridian: no binary at $MERIDIAN_BIN (cargo build --release -p meridian)"; return 1; }
    make_certs || return 1
    mkdir -p "$dir"
    for r in "${REGIONS[@]}"; do
        free_port || { fail "meridian $tag: no free port"; return 1; }
        M_CLIENT[$tag-$r]="$FREE_PORT"
        free_port || { fail "meridian $tag: no free port"; return 1; }
        M_REPL[$tag-$r]="$FREE_PORT"
    done
    for r in "${REGIONS[@]}"; do
        role=secondary; [[ "$r" == us-east-1 ]] && role=primary
        peers=""
        for o in "${REGIONS[@]}"; do
            [[ "$o" == "$r" ]] || peers+="$o = \"$HOST:${M_REPL[$tag-$o]}\""$'\n'
        done
        cat >"$dir/$r.toml" <<EOF
# Written by benches/promote_compare.sh: datastore "$tag".
[region]
name = "$r"
role = "$role"
[listen]
client = "$HOST:${M_CLIENT[$tag-$r]}"
replication = "$HOST:${M_REPL[$tag-$r]}"
[memory]
maxmemory = "4gb"
maxmemory-policy = "noeviction"
[replication]
repl-backlog-size = "64mb"
primary = "us-east-1"
[peers]
${peers}[tls]
ca = "../certs/ca.pem"
cert = "../certs/$r.pem"
key = "../certs/$r-key.pem"
EOF
    done
}

# topo_start PEER TAG: three nodes, n0 the primary; waits until both
# secondaries are linked and caught up.
topo_start() {
    local peer="$1" tag="$2" i
    if [[ "$peer" == redis ]]; then
        for i in 0 1 2; do
            free_port || { fail "$tag: no free port"; return 1; }
            local port="$FREE_PORT" extra=()
            (( i > 0 )) && extra=(--replicaof "$HOST" "${PORT[$tag-n0]}")
            start_proc "$tag-n$i" "$port" "$WORK/dir-$tag-n$i" \
                "$REDIS_SERVER" --port "$port" "${REDIS_ARGS[@]}" --dir . "${extra[@]}" || return 1
        done
    else
        meridian_ds "$tag" || return 1
        for i in 0 1 2; do
            start_proc "$tag-n$i" "${M_CLIENT[$tag-${REGIONS[$i]}]}" "$WORK/dir-$tag-n$i" \
                "$MERIDIAN_BIN" serve --region "$WORK/ds-$tag/${REGIONS[$i]}.toml" || return 1
        done
    fi
    for i in 1 2; do wait_in_sync "$peer" "$tag-n0" "$tag-n$i" "$WORK/sync-$tag-n$i.txt" || return 1; done
}

# wait_in_sync PEER PRI SEC OUT: the probe's `failover` with no command: PRI
# is a primary and SEC linked, same epoch, at or past PRI's position.
wait_in_sync() {
    local rc=0
    timeout $(( SYNC_TIMEOUT + 5 )) "$PROBE_BIN" failover --kind "$1" --new "$HOST:${PORT[$2]}" \
        --other "$HOST:${PORT[$3]}" --timeout-ms $(( SYNC_TIMEOUT * 1000 )) >"$4" 2>&1 || rc=$?
    (( rc == 0 )) && return 0
    fail "$3: not in sync with $2 within ${SYNC_TIMEOUT}s ($(grep -h '^error=' "$4" | head -c 300))"
    return 1
}

# load_start PEER TAG OUT: the load probe on CLIENT_CPU against the three nodes.
load_start() {
    local peer="$1" tag="$2" out="$3"
    rm -f "$WORK/stop-$tag"
    timeout 900 taskset -c "$CLIENT_CPU" "$PROBE_BIN" load --kind "$peer" \
        --node "$HOST:${PORT[$tag-n0]}" --node "$HOST:${PORT[$tag-n1]}" --node "$HOST:${PORT[$tag-n2]}" \
        --rate "$RATE" --gap-us "$GAP_US" --stop-file "$WORK/stop-$tag" --max-secs 850 \
        >"$out" 2>"$out.err" &
    LOAD_PID=$!
}

load_stop() {  # load_stop TAG OUT: stops the probe; fails the step if it failed
    local tag="$1" out="$2" rc=0 i
    touch "$WORK/stop-$tag"
    for (( i = 0; i < 100; i++ )); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    (( rc == 0 )) && return 0
    fail "$tag: load probe exit $rc ($(grep -h '^error=' "$out" | head -c 300) $(head -c 200 "$out.err" | tr '\n' ' '))"
    return 1
}

kv() { awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { v = a[2] } } } END { print v }' "$1"; }

sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f\n", m / 1000 }')"; }

# ---------------------------------------------------------------- helpers

median() {
    printf '%s\n' "$@" | { grep -E '^-?[0-9.]+$' || true; } | sort -g \
        | awk '{ v[NR] = $1 } END {
                 if (NR == 0) exit
                 if (NR % 2) print v[(NR + 1) / 2]
                 else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maxof() { printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g | tail -n 1; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print ""; else printf "%.3f\n", (b - a) / 1e6 }'; }
vs() {  # vs VALUE TARGET: "✓" / "✗" / "-"
    awk -v v="$1" -v t="$2" 'BEGIN { if (v == "") print "-"; else if (v + 0 <= t + 0) print "✓"; else print "✗" }'
}

cpu_busy() {
    local a b
    a="$(head -n 1 /proc/stat)"; sleep 1; b="$(head -n 1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        na = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= na; i++) { d = y[i] - x[i]; t += d; if (i == 5 || i == 6) idle += d }
        printf "%.0f\n", (t > 0 ? 100 * (t - idle) / t : 0) }'
}
busy_line() {
    local pct; pct="$(cpu_busy)"
    echo "- CPU busy $1 (other processes, 1 s sample): ${pct}% of $(nproc) CPUs," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if (( pct > 10 )); then
        echo "- WARNING: the machine is busy $1; pauses are noisy, rerun when idle"
    fi
}
stray_line() {
    local strays
    strays="$(ps -eo pid=,comm=,args= | awk '$2 ~ /^(redis-benchmark|redis-server|meridian|valgrind|rustc|cargo|cc1|ld|memcheck)/ {
                 a = $3; for (i = 4; i <= NF && i <= 6; i++) a = a " " $i; printf "%s%s (%s)", sep, $1, a; sep = ", " }')"
    if [[ -n "$strays" ]]; then
        echo "- WARNING: not idle at start, other benchmark/server/build processes running: $strays"
    else
        echo "- idle check: no other redis-benchmark, redis-server, meridian, valgrind or compiler process running"
    fi
}

# syncs_served PEER TAG: "full partial" resyncs served so far, summed over the nodes
syncs_served() {
    local peer="$1" tag="$2" sect=replication i f=0 p=0 a b
    [[ "$peer" == redis ]] && sect=stats
    for i in 0 1 2; do
        alive "$tag-n$i" || continue
        read -r a b < <(cli "${PORT[$tag-n$i]}" INFO "$sect" | awk -F: '$1 == "sync_full" { f = $2 } $1 == "sync_partial_ok" { p = $2 }
            END { print f + 0, p + 0 }')
        f=$(( f + a )); p=$(( p + b ))
    done
    echo "$f $p"
}

# ---------------------------------------------------------------- context

redis_version="$("$REDIS_SERVER" --version 2>/dev/null || echo unknown)"
if [[ -x "$MERIDIAN_BIN" ]]; then
    meridian_version="$(timeout 5 "$MERIDIAN_BIN" --version 2>/dev/null | head -n 1 || true)"
    meridian_version="${meridian_version:-unknown} (binary $MERIDIAN_BIN, built $(date -r "$MERIDIAN_BIN" '+%F %T'))"
else
    meridian_version="not built ($MERIDIAN_BIN missing)"
fi
git_rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || git_rev+="+dirty"
cmd_env=""
for v in SWITCHOVERS FORCED_ROUNDS RATE GAP_US SETTLE_MS PROMOTE_TIMEOUT_MS PEERS SKIP_PLANNED SKIP_FORCED \
         MERIDIAN_BIN PROBE_BIN REDIS_SERVER CLIENT_CPU OUT_DIR; do
    val="$(printenv "$v" || true)"
    [[ -n "$val" ]] || continue
    if [[ "$val" =~ ^[A-Za-z0-9_.,/:=+-]+$ ]]; then cmd_env+="$v=$val "
    else cmd_env+="$v='${val//\'/\'\\\'\'}' "; fi
done

echo "## Promotion: Meridian vs Redis 7 failover — $(date -u '+%F %T UTC')"
echo
echo "- command: \`${cmd_env}benches/promote_compare.sh\`"
echo "- redis: $redis_version"
echo "- meridian: $meridian_version, repo at $git_rev"
echo "- probe: $PROBE_BIN, built $(date -r "$PROBE_BIN" '+%F %T')"
echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
stray_line
busy_line "at start"
echo "- load: \`taskset -c $CLIENT_CPU meridian-failover-probe load --rate $RATE --gap-us $GAP_US\` (one SET of a fresh key at a time, 16-byte values; retries on the primary it finds); servers unpinned"
echo

# ---------------------------------------------------------------- 1. planned

# Rows of $WORK/plan-PEER: "i t_start_ns t_cmd_end_ns cli_paused_ms primary_ns sync_ns"
planned() {  # planned PEER
    local peer="$1" tag="$1-plan" i tgt old out t0 t1 paused sw s0 s1 waiter reply cur prev
    local -a key=("$tag-n0" "$tag-n1")
    : >"$WORK/plan-$peer"
    topo_start "$peer" "$tag" || { stop_all; return 1; }
    s0="$(syncs_served "$peer" "$tag")"
    out="$WORK/load-$tag.txt"
    load_start "$peer" "$tag" "$out"
    sleep_ms "$SETTLE_MS"
    for (( i = 1; i <= SWITCHOVERS; i++ )); do
        tgt="${key[$(( i % 2 ))]}"; old="${key[$(( (i + 1) % 2 ))]}"
        kill -0 "$LOAD_PID" 2>/dev/null || { fail "$tag: load probe gone before switchover $i"; break; }
        sw="$WORK/switch-$tag-$i.txt"
        paused=""
        # The waiter watches from before the command: target primary, then
        # the third node in sync with it.
        timeout $(( SYNC_TIMEOUT + 5 )) "$PROBE_BIN" failover --kind "$peer" --new "$HOST:${PORT[$tgt]}" \
            --other "$HOST:${PORT[$tag-n2]}" --timeout-ms $(( SYNC_TIMEOUT * 1000 )) >"$sw" 2>&1 &
        waiter=$!
        sleep 0.05
        t0="$(now_ns)"
        if [[ "$peer" == meridian ]]; then
            local r="${REGIONS[$(( i % 2 ))]}"
            if ! timeout 30 "$MERIDIAN_BIN" promote "$r" --regions "$WORK/ds-$tag" --timeout-ms "$PROMOTE_TIMEOUT_MS" \
                    >"$sw.cli" 2>&1; then
                fail "$tag switchover $i (to $r): meridian promote failed: $(tr '\n' ' ' <"$sw.cli" | head -c 300)"
            fi
            paused="$(sed -n 's/.*writes paused \([0-9.]*\) ms.*/\1/p' "$sw.cli" | head -n 1)"
        else
            reply="$(cli "${PORT[$old]}" FAILOVER TO "$HOST" "${PORT[$tgt]}")"
            [[ "$reply" == OK ]] || fail "$tag switchover $i: FAILOVER TO ${PORT[$tgt]} on ${PORT[$old]} answered '$reply'"
        fi
        t1="$(now_ns)"
        wait "$waiter" || fail "$tag switchover $i: $(grep -h '^error=' "$sw" | head -c 400)"
        echo "$i $t0 $t1 ${paused:--} $(kv "$sw" primary_ns) $(kv "$sw" sync_ns)" >>"$WORK/plan-$peer"
        sleep_ms "$SETTLE_MS"
    done
    load_stop "$tag" "$out" || true
    # The old primary must be back in sync too before the write check.
    cur="${key[$(( SWITCHOVERS % 2 ))]}"; prev="${key[$(( (SWITCHOVERS + 1) % 2 ))]}"
    wait_in_sync "$peer" "$cur" "$prev" "$WORK/final-$tag-a.txt" || true
    wait_in_sync "$peer" "$cur" "$tag-n2" "$WORK/final-$tag-b.txt" || true
    s1="$(syncs_served "$peer" "$tag")"
    echo "$s0 $s1" >"$WORK/plan-syncs-$peer"
    local acked prefix
    acked="$(kv "$out" acked)"; prefix="$(kv "$out" prefix)"
    if [[ -n "$acked" && -n "$prefix" ]]; then
        timeout 120 "$PROBE_BIN" verify --node "$HOST:${PORT[$tag-n0]}" --node "$HOST:${PORT[$tag-n1]}" \
            --node "$HOST:${PORT[$tag-n2]}" --prefix "$prefix" --count "$acked" >"$WORK/verify-$peer.txt" 2>&1 \
            || fail "$tag: verify: $(head -c 300 "$WORK/verify-$peer.txt")"
    fi
    local d0 d ok=yes
    d0="$(cli "${PORT[$tag-n0]}" DEBUG DIGEST)"
    for i in 1 2; do d="$(cli "${PORT[$tag-n$i]}" DEBUG DIGEST)"; [[ -n "$d0" && "$d" == "$d0" ]] || ok=no; done
    echo "$ok" >"$WORK/plan-digest-$peer"
    [[ "$ok" == yes ]] || fail "$tag: DEBUG DIGEST differs between the nodes after the switchovers"
    if [[ "$peer" == redis ]]; then
        echo "$(field "${PORT[$tag-n2]}" replication master_port)" >"$WORK/plan-third-master-$peer"
    fi
    stop_all
}

# gap_for PEER I: "pause noise" for switchover I, from the load probe's gaps
# that end in its window [its start, the next one's start): pause = the
# longest gap in which the probe got an error or moved to another node (the
# switchover's own pause); noise = the longest other gap in the window (the
# machine's jitter floor: process starts, scheduling on shared CPUs).
gap_for() {
    local peer="$1" i="$2" lo hi
    lo="$(awk -v i="$i" '$1 == i { print $2 }' "$WORK/plan-$peer")"
    hi="$(awk -v i="$(( i + 1 ))" '$1 == i { print $2 }' "$WORK/plan-$peer")"
    [[ -n "$hi" ]] || hi=99999999999999999999
    awk -v lo="$lo" -v hi="$hi" '$1 == "gap" {
        for (f = 2; f <= NF; f++) { split($f, kv, "="); g[kv[1]] = kv[2] }
        if (g["end_ns"] + 0 < lo + 0 || g["end_ns"] + 0 >= hi + 0) next
        sw = g["from"] != g["to"] || g["tryagain"] + g["readonly"] + g["other"] + g["io"] > 0
        if (sw && g["ms"] + 0 > p) p = g["ms"] + 0
        if (!sw && g["ms"] + 0 > n) n = g["ms"] + 0 }
        END { printf "%s %s\n", (p > 0 ? p : "-"), (n > 0 ? n : "-") }' "$WORK/load-$peer-plan.txt"
}

if [[ "$SKIP_PLANNED" != 1 ]]; then
    echo "### 1. Planned switchover, $SWITCHOVERS times alternating between two nodes, $RATE SET/s"
    echo
    note "meridian: \`meridian promote eu-west-1|us-east-1 --regions DIR --timeout-ms $PROMOTE_TIMEOUT_MS\` (FENCE, wait for the fence, PROMOTE, FOLLOW); redis: \`FAILOVER TO 127.0.0.1 \$P\` on the primary (returns at once; the handover runs in the background)"
    note "pause = longest gap between two acknowledged writes of the load probe, among those in which it got an error reply (TRYAGAIN, READONLY), a broken connection or moved to another node, ending between this switchover's start and the next one's ($SETTLE_MS ms apart after each completes); such gaps are always reported by the probe. Gaps ≥ GAP_US = $GAP_US µs with no error on the same node are listed apart as the jitter floor"
    note "primary = from the command's start until the target answers as primary (redis: role master, no failover in progress); third = until the third node (ap-southeast-1 / replica 2) is linked, same epoch, at or past the new primary's position (probe \`failover\`, started just before the command, polling both every 0.2 ms; meridian's times include the CLI's process start)"
    for peer in $PEERS; do planned "$peer" || true; done
    echo
    echo "| peer | switchovers | pause p50 ms | pause max ms | target | CLI \"writes paused\" p50 / max ms | target primary after p50 / max ms | third in sync after p50 / max ms | probe errors (tryagain / readonly / other / io) | syncs served (full / partial) | acknowledged writes missing (n0 / n1 / n2) | digests equal |"
    echo '|---|---:|---:|---:|---|---|---|---|---|---|---|---|'
    for peer in $PEERS; do
        [[ -s "$WORK/plan-$peer" ]] || { echo "| $peer | FAIL | | | | | | | | | | |"; continue; }
        gaps=(); prim=(); sync=(); cliv=(); noise=()
        n="$(wc -l <"$WORK/plan-$peer")"
        while read -r i t0 t1 paused pns sns; do
            read -r g ng < <(gap_for "$peer" "$i")
            # "-": no gap with an error or a node change (no pause seen).
            [[ "$g" == - ]] && g=""
            gaps+=("${g:-0}"); [[ "$ng" != - ]] && noise+=("$ng")
            [[ "$paused" != - ]] && cliv+=("$paused")
            prim+=("$(ms_between "$t0" "$pns")"); sync+=("$(ms_between "$t0" "$sns")")
            echo "$peer $i ${g:-none} ${paused} $(ms_between "$t0" "$pns") $(ms_between "$t0" "$sns") $ng" >>"$WORK/plan-rows"
        done <"$WORK/plan-$peer"
        p50="$(median "${gaps[@]}")"; mx="$(maxof "${gaps[@]}")"
        tgt="p50 ≤ $T_PAUSE_P50 $(vs "$p50" "$T_PAUSE_P50"), max ≤ $T_PAUSE_MAX $(vs "$mx" "$T_PAUSE_MAX")"
        [[ "$peer" == redis ]] && tgt="(reference) p50 $(vs "$p50" "$T_PAUSE_P50") max $(vs "$mx" "$T_PAUSE_MAX")"
        clis="-"; (( ${#cliv[@]} )) && clis="$(median "${cliv[@]}") / $(maxof "${cliv[@]}")"
        out="$WORK/load-$peer-plan.txt"
        errs="$(kv "$out" tryagain) / $(kv "$out" readonly) / $(kv "$out" other_errors) / $(kv "$out" io_errors)"
        read -r f0 p0 f1 p1 <"$WORK/plan-syncs-$peer" || true
        miss="$(kv "$WORK/verify-$peer.txt" missing_0) / $(kv "$WORK/verify-$peer.txt" missing_1) / $(kv "$WORK/verify-$peer.txt" missing_2)"
        printf '| %s | %s | **%s** | **%s** | %s | %s | %s / %s | %s / %s | %s | %s / %s | %s of %s | %s |\n' \
            "$peer" "$n" "${p50:--}" "${mx:--}" "$tgt" "$clis" "$(median "${prim[@]}")" "$(maxof "${prim[@]}")" \
            "$(median "${sync[@]}")" "$(maxof "${sync[@]}")" "$errs" "$(( ${f1:-0} - ${f0:-0} ))" "$(( ${p1:-0} - ${p0:-0} ))" \
            "$miss" "$(kv "$out" acked)" "$(cat "$WORK/plan-digest-$peer" 2>/dev/null || echo -)"
    done
    echo
    for peer in $PEERS; do
        [[ -s "$WORK/plan-rows" ]] || break
        echo "- $peer, pause ms per switchover: $(awk -v p="$peer" '$1 == p { printf "%s%s", sep, $3; sep = " " }' "$WORK/plan-rows")"
        [[ "$peer" == meridian ]] && echo "- meridian, CLI \"writes paused\" ms per switchover: $(awk -v p="$peer" '$1 == p { printf "%s%s", sep, $4; sep = " " }' "$WORK/plan-rows")"
        echo "- $peer, third in sync ms after the command: $(awk -v p="$peer" '$1 == p { printf "%s%s", sep, $6; sep = " " }' "$WORK/plan-rows")"
        echo "- $peer, longest other gap (no error, same node) in each window, ms: $(awk -v p="$peer" '$1 == p { printf "%s%s", sep, $7; sep = " " }' "$WORK/plan-rows")"
    done
    if [[ -s "$WORK/plan-third-master-redis" ]]; then
        echo "- redis: after the switchovers replica 2 replicates from port $(cat "$WORK/plan-third-master-redis") (FAILOVER re-points only the two nodes involved: replica 2 stays attached to the node it was started under, which is alternately the primary and a replica of it; chained replication in between)"
    fi
    echo
fi

# ---------------------------------------------------------------- 2. forced

# forced_round VARIANT ROUND: rows of $WORK/forced: "variant round accept_ms sync_ms first_ack_ms cli_ms"
forced_round() {
    local variant="$1" round="$2" peer tag out f t0 fa acc syn clims="-" gapend
    peer=redis; [[ "$variant" == redis ]] || peer=meridian
    tag="$variant-f$round"
    topo_start "$peer" "$tag" || { stop_all; return 1; }
    out="$WORK/load-$tag.txt"; f="$WORK/forced-$tag.txt"
    load_start "$peer" "$tag" "$out"
    sleep_ms "$SETTLE_MS"
    kill_server "$tag-n0"
    case "$variant" in
        redis|meridian-resp)
            local cmd="REPLICAOF NO ONE" follow="REPLICAOF $HOST ${PORT[$tag-n1]}"
            if [[ "$variant" == meridian-resp ]]; then
                cmd="MERIDIAN PROMOTE FORCE"; follow="MERIDIAN FOLLOW ${REGIONS[1]}"
                # The quorum step first (meridian promote times it too): the
                # two live regions grant epoch 2 to the target.
                for n in n1 n2; do
                    redis-cli -h "$HOST" -p "${PORT[$tag-$n]}" MERIDIAN CLAIM 2 "${REGIONS[1]}" >/dev/null \
                        || fail "$tag: MERIDIAN CLAIM on $n failed"
                done
            fi
            timeout $(( SYNC_TIMEOUT + 5 )) "$PROBE_BIN" failover --kind "$peer" --new "$HOST:${PORT[$tag-n1]}" \
                --cmd "$cmd" --write --other "$HOST:${PORT[$tag-n2]}" --follow-cmd "$follow" \
                --timeout-ms $(( SYNC_TIMEOUT * 1000 )) >"$f" 2>&1 || fail "$tag: $(grep -h '^error=' "$f" | head -c 400)"
            t0="$(kv "$f" start_ns)"; acc="$(kv "$f" write_ms)"; syn="$(kv "$f" sync_ms)"
            ;;
        meridian-cli)
            # The sync waiter starts first (no command: it only watches).
            timeout $(( SYNC_TIMEOUT + 5 )) "$PROBE_BIN" failover --kind meridian --new "$HOST:${PORT[$tag-n1]}" \
                --other "$HOST:${PORT[$tag-n2]}" --timeout-ms $(( SYNC_TIMEOUT * 1000 )) >"$f" 2>&1 &
            local waiter=$!
            sleep 0.05
            t0="$(now_ns)"
            timeout 30 "$MERIDIAN_BIN" promote "${REGIONS[1]}" --force --regions "$WORK/ds-$tag" >"$f.cli" 2>&1 \
                || fail "$tag: meridian promote --force failed: $(tr '\n' ' ' <"$f.cli" | head -c 300)"
            wait "$waiter" || fail "$tag: $(grep -h '^error=' "$f" | head -c 400)"
            clims="$(sed -n 's/.*accepting writes \([0-9.]*\) ms after the command.*/\1/p' "$f.cli" | head -n 1)"
            acc=""; syn="$(ms_between "$t0" "$(kv "$f" sync_ns)")"
            ;;
    esac
    sleep_ms 200
    load_stop "$tag" "$out" || true
    # The load probe's first acknowledged write after the kill.
    gapend="$(awk '$1 == "gap" { split($3, e, "="); split($4, m, "="); if (m[2] + 0 > best) { best = m[2] + 0; v = e[2] } }
        END { print v }' "$out")"
    fa="$(ms_between "$t0" "$gapend")"
    [[ "$variant" == meridian-cli ]] && acc="$fa"
    echo "$variant $round ${acc:--} ${syn:--} ${fa:--} ${clims:--}" >>"$WORK/forced"
    stop_all
}

if [[ "$SKIP_FORCED" != 1 ]]; then
    echo "### 2. Forced failover: SIGKILL the primary, $FORCED_ROUNDS rounds per variant on fresh nodes, $RATE SET/s"
    echo
    note "redis: \`REPLICAOF NO ONE\` on replica 1, one SET retried until OK, then \`REPLICAOF 127.0.0.1 \$P1\` on replica 2; meridian (RESP): after \`MERIDIAN CLAIM 2 eu-west-1\` on both live regions (untimed), the same with \`MERIDIAN PROMOTE FORCE\` on eu-west-1 and \`MERIDIAN FOLLOW eu-west-1\` on ap-southeast-1; times from just before the probe sends the first command (\`meridian-failover-probe failover\`)"
    note "meridian (CLI): \`meridian promote eu-west-1 --force --regions DIR\`, times from just before the CLI is started (includes its process start and reading the region files); \"accepts a write\" = the load probe's first acknowledged SET on the new primary; the CLI's own \"accepting writes X ms after the command\" beside it"
    note "third in sync = ap-southeast-1 / replica 2 linked to the new primary, same epoch, at or past its position while the load keeps writing"
    : >"$WORK/forced"
    VARIANTS=()
    for peer in $PEERS; do
        if [[ "$peer" == redis ]]; then VARIANTS+=(redis); else VARIANTS+=(meridian-resp meridian-cli); fi
    done
    for (( round = 1; round <= FORCED_ROUNDS; round++ )); do
        for v in "${VARIANTS[@]}"; do forced_round "$v" "$round" || true; done
    done
    echo
    echo "| peer, variant | rounds | accepts a write after, median ms (runs) | target | third in sync after, median ms (runs) | target | load probe's first ack after, median ms | CLI's own figure, median ms |"
    echo '|---|---:|---|---|---|---|---:|---:|'
    for v in "${VARIANTS[@]}"; do
        n="$(awk -v v="$v" '$1 == v' "$WORK/forced" | wc -l)"
        col() { awk -v v="$v" -v c="$1" '$1 == v { print $c }' "$WORK/forced"; }
        runs() { awk -v v="$v" -v c="$1" '$1 == v { printf "%s%s", sep, $c; sep = " " }' "$WORK/forced"; }
        # shellcheck disable=SC2046
        acc="$(median $(col 3))"; syn="$(median $(col 4))"; fa="$(median $(col 5))"; clm="$(median $(col 6))"
        ta="≤ $T_ACCEPT $(vs "$acc" "$T_ACCEPT")"; ts="≤ $T_SYNC $(vs "$syn" "$T_SYNC")"
        [[ "$v" == redis ]] && { ta="(reference)"; ts="(reference)"; }
        printf '| %s | %s | **%s** (%s) | %s | **%s** (%s) | %s | %s | %s |\n' "$v" "$n" "${acc:--}" "$(runs 3)" "$ta" \
            "${syn:--}" "$(runs 4)" "$ts" "${fa:--}" "${clm:--}"
    done
    echo
fi

# ---------------------------------------------------------------- summary

busy_line "at end"
[[ "$KEEP_WORK" == 1 ]] && echo "- raw outputs and server logs: $WORK"
if [[ -s "$WORK/failures" ]]; then
    echo
    echo "FAILED steps ($(wc -l <"$WORK/failures")):"
    sed 's/^/  - /' "$WORK/failures"
    exit 1
fi
echo "- all steps completed"
