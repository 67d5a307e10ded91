#!/usr/bin/env bash
# Meridian replication vs Redis replication, side by side, in one run:
#   1. SET throughput of a primary with two secondaries attached, as a fraction
#      of the same server with none (redis-benchmark -t set -c 50 -n N
#      -r 100000 at each of PIPELINES), the same counting the time the
#      secondaries take to catch up after the run, and each secondary's CPU
#      time per applied entry; then the CPU budget: client, primary and both
#      secondaries' CPU time per SET, and the fraction that this machine's CPUs
#      allow at all (CPUs / total CPU time per SET, over rps with none),
#   2. write -> visible-on-a-secondary latency at a steady LAG_RATE writes/s of
#      64-byte values (target/release/meridian-lagprobe: p50 .. max),
#   3. full sync of FULLSYNC_KEYS 10-byte keys/values to a fresh secondary,
#      timed until its DBSIZE equals the primary's (Redis: disk RDB, diskless
#      with delay 0, and its default diskless with a 5 s delay),
#   and the context needed to compare runs (versions, machine, date, command).
#
# Topologies: Redis is redis-server + 2 x `redis-server --replicaof 127.0.0.1 P`;
# Meridian is three `meridian serve --region FILE` nodes (QUIC + mutual TLS,
# certificates made by `meridian certs` in a temp dir). Every server gets
# `--save "" --appendonly no` (Redis) or the region file's equivalent. Primaries
# (and standalone servers) are pinned to SERVER_CPU, redis-benchmark and the
# probe to CLIENT_CPU; secondaries are not pinned: they compete for the cores
# as Redis's replicas do. Ports are picked free at run time (TCP and UDP).
#
# Nothing is asserted: the output prints ratios and the targets beside them.
# Every wait is bounded and every server started here is killed on exit.
# Exit status: 0 when both peers completed every part, 1 when a step failed
# (the rest still runs and prints), 2 on a usage or environment error.
#
# Environment (defaults in brackets):
#   N              requests per redis-benchmark run [1000000]
#   PIPELINES      -P values, space- or comma-separated [16 1]
#   ROUNDS         rounds of every measurement; medians reported [1]
#   LAG_RATE       writes/s of the latency probe [50000]
#   LAG_SECS       seconds the probe writes for [10]
#   LAG_SAMPLE     the probe tracks one write in this many [50]
#   LAG_TIMEOUT_MS a sample not visible after this long is a miss [1000]
#   FULLSYNC_KEYS  keys loaded before the full sync, at most 1000000 [1000000]
#   FULLSYNC_TIMEOUT  seconds to wait for one full sync [120]
#   FS_BACKLOG     Meridian's repl-backlog-size for the full sync, small so that
#                  the loaded history is out of the backlog [1mb]; a second
#                  Meridian datastore with 64mb is timed too, for comparison
#   SKIP_THROUGHPUT=1 / SKIP_LATENCY=1 / SKIP_FULLSYNC=1   skip a part
#   REGION_OPTIONS lines added to every region file's [options] table, e.g.
#                  'io-threads = "1"' (default: none)
#   MERIDIAN_BIN   meridian binary [<repo>/target/release/meridian]
#   PROBE_BIN      the probe [<repo>/target/release/meridian-lagprobe]
#                  (cargo build --release -p relay --bin meridian-lagprobe)
#   REDIS_SERVER   [redis-server]
#   SERVER_CPU / CLIENT_CPU   CPUs for primaries / clients [0 / 1]
#   START_TIMEOUT  seconds to wait for a server to answer PING [20]
#   SYNC_TIMEOUT   seconds for secondaries to link up or catch up [60]
#   BENCH_TIMEOUT  seconds per redis-benchmark run [30 + N/5000]
#   LOAD_TIMEOUT   seconds for the whole `redis-cli --pipe` load [180]
#   OUT_DIR        keep logs, CSVs and region files here (default: temp, removed)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly HOST=127.0.0.1

N="${N:-1000000}"
PIPELINES="${PIPELINES:-16 1}"
ROUNDS="${ROUNDS:-1}"
LAG_RATE="${LAG_RATE:-50000}"
LAG_SECS="${LAG_SECS:-10}"
LAG_SAMPLE="${LAG_SAMPLE:-50}"
LAG_TIMEOUT_MS="${LAG_TIMEOUT_MS:-1000}"
FULLSYNC_KEYS="${FULLSYNC_KEYS:-1000000}"
FULLSYNC_TIMEOUT="${FULLSYNC_TIMEOUT:-120}"
FS_BACKLOG="${FS_BACKLOG:-1mb}"
SKIP_THROUGHPUT="${SKIP_THROUGHPUT:-0}"
SKIP_LATENCY="${SKIP_LATENCY:-0}"
SKIP_FULLSYNC="${SKIP_FULLSYNC:-0}"
REGION_OPTIONS="${REGION_OPTIONS:-}"
MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
PROBE_BIN="${PROBE_BIN:-$ROOT/target/release/meridian-lagprobe}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
START_TIMEOUT="${START_TIMEOUT:-20}"
SYNC_TIMEOUT="${SYNC_TIMEOUT:-60}"
LOAD_TIMEOUT="${LOAD_TIMEOUT:-180}"
readonly PEERS=(redis meridian)
# Targets printed beside the measured fractions (issue 4), by pipeline.
declare -A TARGET=([16]=0.8 [1]=0.9)

die() { echo "error: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; die "no arguments expected; configure with the environment variables above" ;;
esac
note() { echo "- $*"; }  # output is Markdown, ready to paste into RESULTS.md
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

for v in N ROUNDS LAG_RATE LAG_SECS LAG_SAMPLE LAG_TIMEOUT_MS FULLSYNC_TIMEOUT START_TIMEOUT \
         SYNC_TIMEOUT LOAD_TIMEOUT; do
    is_uint "${!v}" && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
(( LAG_SECS <= 600 )) || die "LAG_SECS must be at most 600"
is_uint "$FULLSYNC_KEYS" && (( FULLSYNC_KEYS > 0 && FULLSYNC_KEYS <= 1000000 )) \
    || die "FULLSYNC_KEYS must be in 1..1000000 (keys are key:NNNNNN, 10 bytes)"
read -r -a PL_LIST <<<"${PIPELINES//,/ }"
(( ${#PL_LIST[@]} > 0 )) || die "PIPELINES must list at least one -P value"
for pl in "${PL_LIST[@]}"; do
    is_uint "$pl" && (( pl > 0 )) || die "PIPELINES must be positive integers (got '$PIPELINES')"
done
PIPELINES="${PL_LIST[*]}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-$(( 30 + N / 5000 ))}"
is_uint "$BENCH_TIMEOUT" && (( BENCH_TIMEOUT > 0 )) \
    || die "BENCH_TIMEOUT must be a positive integer (got '$BENCH_TIMEOUT')"
for tool in redis-benchmark redis-cli taskset timeout awk ss "$REDIS_SERVER"; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH"
done

# ---------------------------------------------------------------- bookkeeping

if [[ -n "${OUT_DIR:-}" ]]; then
    mkdir -p "$OUT_DIR"; WORK="$(cd "$OUT_DIR" && pwd)"; KEEP_WORK=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/meridian-repl-bench.XXXXXX")"; KEEP_WORK=0
fi
declare -A PID=() PORT=() LOG=()
USED_PORTS=()
# One line per failed step, printed at the end. A file, and fd 3 for the
# report line, because steps run inside $(...) too.
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

stop_all() { local name; for name in "${!PID[@]}"; do stop_server "$name"; done; }

CHILD_PID=""  # the running redis-benchmark / probe (its `timeout` wrapper), if any

cleanup() {
    [[ -n "$CHILD_PID" ]] && kill -TERM "$CHILD_PID" 2>/dev/null
    stop_all
    if [[ "$KEEP_WORK" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port: sets FREE_PORT (not printed: USED_PORTS must be updated in this
# shell, not in a $(...) subshell) to a port free for both TCP and UDP (Meridian replicates over QUIC/UDP), not
# handed out before in this run, and below the kernel's ephemeral range (a
# port in that range can be the source port of some client's connection).
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

# start_proc KEY PORT CPU CWD ARGV...: start a server (pinned to CPU unless
# CPU is empty) in CWD, wait for its PONG. Sets PID[KEY], PORT[KEY], LOG[KEY].
start_proc() {
    local key="$1" port="$2" cpu="$3" cwd="$4" deadline reply log pin=()
    shift 4
    log="$WORK/$key.log"
    [[ -e "$log" ]] && log="$WORK/$key.$(now_ns).log"
    [[ -n "$cpu" ]] && pin=(taskset -c "$cpu")
    mkdir -p "$cwd"
    ( cd "$cwd" && exec "${pin[@]}" "$@" ) >"$log" 2>&1 &
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

# --- Redis

REDIS_ARGS=(--bind "$HOST" --save "" --appendonly no --daemonize no --logfile ""
            --enable-debug-command local)

REDIS_SHOW="--bind $HOST --save \"\" --appendonly no --daemonize no --logfile \"\" --enable-debug-command local --dir ."

redis_start() {  # redis_start KEY CPU [EXTRA ARGS...]
    local key="$1" cpu="$2" port; shift 2
    free_port || { fail "$key: no free port"; return 1; }
    port="$FREE_PORT"
    start_proc "$key" "$port" "$cpu" "$WORK/dir-$key-$(now_ns)" \
        "$REDIS_SERVER" --port "$port" "${REDIS_ARGS[@]}" --dir . "$@"
}

# --- Meridian

REGIONS=(us-east-1 eu-west-1 ap-southeast-1)
declare -A M_CLIENT=() M_REPL=()
CERTS_MADE=0

make_certs() {
    (( CERTS_MADE )) && return 0
    timeout 60 "$MERIDIAN_BIN" certs "$WORK/certs" >"$WORK/certs.log" 2>&1 \
        || { fail "meridian certs: $(tail -n 3 "$WORK/certs.log" | tr '\n' ' ')"; return 1; }
    CERTS_MADE=1
}

# meridian_ds TAG [BACKLOG]: region files for a datastore named TAG in
# $WORK/ds-TAG, fresh ports for every region; us-east-1 is the primary;
# repl-backlog-size BACKLOG [64mb].
meridian_ds() {
    local tag="$1" backlog="${2:-64mb}" dir="$WORK/ds-$1" r o role peers
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
# Written by benches/repl_compare.sh: datastore "$tag".
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
repl-backlog-size = "$backlog"
primary = "us-east-1"
[peers]
${peers}[tls]
ca = "../certs/ca.pem"
cert = "../certs/$r.pem"
key = "../certs/$r-key.pem"
EOF
        if [[ -n "$REGION_OPTIONS" ]]; then
            printf '[options]\n%s\n' "$REGION_OPTIONS" >>"$dir/$r.toml"
        fi
    done
}

meridian_start() {  # meridian_start KEY TAG REGION CPU: one region node, fresh working dir
    local key="$1" tag="$2" r="$3" cpu="$4"
    start_proc "$key" "${M_CLIENT[$tag-$r]}" "$cpu" "$WORK/dir-$key-$(now_ns)" \
        "$MERIDIAN_BIN" serve --region "$WORK/ds-$tag/$r.toml"
}

meridian_alone_start() {  # meridian_alone_start KEY CPU: standalone node
    local key="$1" cpu="$2" port
    [[ -x "$MERIDIAN_BIN" ]] || { fail "meridian: no binary at $MERIDIAN_BIN (cargo build --release -p meridian)"; return 1; }
    free_port || { fail "$key: no free port"; return 1; }
    port="$FREE_PORT"
    start_proc "$key" "$port" "$cpu" "$WORK/dir-$key-$(now_ns)" \
        "$MERIDIAN_BIN" serve --port "$port" --bind "$HOST" --save "" --appendonly no
}

# --- topologies: PEER-TAG-pri, PEER-TAG-s1, PEER-TAG-s2

# repl_start PEER TAG NSEC: primary pinned to SERVER_CPU, NSEC (0..2)
# secondaries unpinned, then waits until they are linked and caught up.
repl_start() {
    local peer="$1" tag="$2" nsec="$3" k="$1-$2" i
    if [[ "$peer" == redis ]]; then
        redis_start "$k-pri" "$SERVER_CPU" || return 1
        for (( i = 1; i <= nsec; i++ )); do
            redis_start "$k-s$i" "" --replicaof "$HOST" "${PORT[$k-pri]}" || return 1
        done
    else
        meridian_ds "$tag" || return 1
        meridian_start "$k-pri" "$tag" us-east-1 "$SERVER_CPU" || return 1
        for (( i = 1; i <= nsec; i++ )); do
            meridian_start "$k-s$i" "$tag" "${REGIONS[$i]}" "" || return 1
        done
    fi
    for (( i = 1; i <= nsec; i++ )); do wait_synced "$peer" "$k-pri" "$k-s$i" || return 1; done
}

applied() {  # applied PEER PORT: the secondary's applied position
    if [[ "$1" == redis ]]; then field "$2" replication slave_repl_offset
    else field "$2" replication applied_seq; fi
}

# wait_synced PEER PRI SEC: link up and applied == the primary's offset, within
# SYNC_TIMEOUT. Prints nothing; fails the step on timeout.
wait_synced() {
    local peer="$1" pri="$2" sec="$3" deadline link a o
    deadline=$(( SECONDS + SYNC_TIMEOUT ))
    while (( SECONDS < deadline )); do
        alive "$pri" && alive "$sec" || { fail "$sec: a server of the pair $pri/$sec is gone"; return 1; }
        link="$(field "${PORT[$sec]}" replication master_link_status)"
        o="$(field "${PORT[$pri]}" replication master_repl_offset)"
        a="$(applied "$peer" "${PORT[$sec]}")"
        [[ "$link" == up && -n "$o" && "$a" == "$o" ]] && return 0
        sleep 0.05
    done
    fail "$sec: not in sync with $pri within ${SYNC_TIMEOUT}s (link '$link', applied '$a', primary offset '$o')"
    return 1
}

# ---------------------------------------------------------------- helpers

median() {  # median of the numbers given as arguments ("" if none)
    printf '%s\n' "$@" | { grep -E '^-?[0-9.]+$' || true; } | sort -g \
        | awk '{ v[NR] = $1 } END {
                 if (NR == 0) exit
                 if (NR % 2) print v[(NR + 1) / 2]
                 else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

maxof() { printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g | tail -n 1; }

cpu_busy() {  # percentage of all CPUs busy over one second, from /proc/stat
    local a b
    a="$(head -n 1 /proc/stat)"; sleep 1; b="$(head -n 1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        na = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= na; i++) { d = y[i] - x[i]; t += d; if (i == 5 || i == 6) idle += d }
        printf "%.0f\n", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

busy_line() {  # busy_line WHEN: one report line, with a warning when busy
    local pct; pct="$(cpu_busy)"
    echo "- CPU busy $1 (other processes, 1 s sample): ${pct}% of $(nproc) CPUs," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if (( pct > 10 )); then
        echo "- WARNING: the machine is busy $1; throughput and latency are noisy, rerun when idle"
    fi
}

# Processes that would skew the numbers (started by someone else: this script
# has started nothing yet when it is called).
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

fmt0() { awk -v x="$1" 'BEGIN { if (x == "") print "FAIL"; else printf "%.0f\n", x }'; }

ratio() {  # ratio A B -> A/B with 2 decimals, "-" when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

cpu_ticks() {  # cpu_ticks PID: user + system CPU time of PID so far, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# child_ticks: sets CHILD_TICKS to the user + system CPU time of this shell's
# reaped children (cutime + cstime, fields 16 and 17 of /proc/$BASHPID/stat), in
# clock ticks; "" if unreadable. Builtins only: it starts no process of its own.
child_ticks() {
    local s="" f=()
    CHILD_TICKS=""
    read -r s 2>/dev/null <"/proc/$BASHPID/stat" || return 0
    read -r -a f <<<"${s##*') '}"
    (( ${#f[@]} > 14 )) && CHILD_TICKS=$(( f[13] + f[14] ))
    return 0
}
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))

# ---------------------------------------------------------------- context

redis_version="$("$REDIS_SERVER" --version 2>/dev/null || echo unknown)"
if [[ -x "$MERIDIAN_BIN" ]]; then
    meridian_version="$(timeout 5 "$MERIDIAN_BIN" --version 2>/dev/null | head -n 1 || true)"
    meridian_version="${meridian_version:-unknown} (binary $MERIDIAN_BIN, built $(date -r "$MERIDIAN_BIN" '+%F %T'))"
else
    meridian_version="not built ($MERIDIAN_BIN missing)"
fi
if [[ -x "$PROBE_BIN" ]]; then
    probe_version="$PROBE_BIN, built $(date -r "$PROBE_BIN" '+%F %T')"
else
    probe_version="not built ($PROBE_BIN missing: cargo build --release -p relay --bin meridian-lagprobe)"
fi
git_rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || git_rev+="+dirty"

cmd_env=""
for v in N PIPELINES ROUNDS LAG_RATE LAG_SECS LAG_SAMPLE LAG_TIMEOUT_MS FULLSYNC_KEYS FS_BACKLOG \
         SKIP_THROUGHPUT SKIP_LATENCY SKIP_FULLSYNC MERIDIAN_BIN PROBE_BIN REDIS_SERVER \
         SERVER_CPU CLIENT_CPU REGION_OPTIONS OUT_DIR; do
    val="$(printenv "$v" || true)"
    [[ -n "$val" ]] || continue
    if [[ "$val" =~ ^[A-Za-z0-9_.,/:=+-]+$ ]]; then cmd_env+="$v=$val "
    else cmd_env+="$v='${val//\'/\'\\\'\'}' "; fi
done

echo "## Meridian vs Redis replication — $(date -u '+%F %T UTC')"
echo
echo "- command: \`${cmd_env}benches/repl_compare.sh\`"
echo "- redis: $redis_version"
echo "- meridian: $meridian_version, repo at $git_rev"
echo "- probe: $probe_version"
echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
stray_line
busy_line "at start"
echo "- primaries on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, secondaries unpinned; N=$N, PIPELINES=$PIPELINES," \
     "ROUNDS=$ROUNDS, LAG_RATE=$LAG_RATE, LAG_SECS=$LAG_SECS, FULLSYNC_KEYS=$FULLSYNC_KEYS"
echo

# ---------------------------------------------------------------- 1. throughput

# bench KEY PL OUTFILE: one redis-benchmark SET run against KEY's port; prints
# "rps client_ticks primary_ticks" (nothing on failure; a tick count is "-"
# when it could not be read): the CPU time (user + system, clock ticks) of
# redis-benchmark and of KEY's server over the run. Aborts the run when the
# server dies.
bench() {
    local key="$1" pl="$2" csv="$3" rc=0 rps p0 p1 cl pr
    # redis-benchmark runs under a subshell whose only child is `timeout`, so
    # that subshell's children time (timeout + redis-benchmark, reaped) is the
    # client's CPU time, free of the polling loop's `sleep`s below. TERM to it
    # is passed on to `timeout`.
    rm -f "$csv.ticks"
    p0="$(cpu_ticks "${PID[$key]}")"
    (
        tpid=""; rc=0
        trap '[[ -n "$tpid" ]] && kill -TERM "$tpid" 2>/dev/null' TERM
        child_ticks; c0="$CHILD_TICKS"
        timeout "$BENCH_TIMEOUT" taskset -c "$CLIENT_CPU" redis-benchmark -h "$HOST" -p "${PORT[$key]}" \
            -t set -c 50 -n "$N" -r 100000 -P "$pl" -q --csv >"$csv" 2>"$csv.err" &
        tpid=$!
        wait "$tpid" || rc=$?
        # Woken by the TERM trap: wait for `timeout` to end (its status then).
        if kill -0 "$tpid" 2>/dev/null; then rc=0; wait "$tpid" || rc=$?; fi
        child_ticks
        if [[ -n "$c0" && -n "$CHILD_TICKS" ]]; then echo "$(( CHILD_TICKS - c0 ))" >"$csv.ticks"; fi
        exit "$rc"
    ) >/dev/null &
    CHILD_PID=$!
    while kill -0 "$CHILD_PID" 2>/dev/null; do
        alive "$key" || { kill -TERM "$CHILD_PID" 2>/dev/null; break; }
        sleep 0.1
    done
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    p1="$(cpu_ticks "${PID[$key]}")"
    rps="$(awk -F'","' 'NR > 1 && $1 ~ /SET/ { printf "%.2f\n", $2; exit }' "$csv")"
    if (( rc != 0 )) || [[ -z "$rps" ]]; then
        alive "$key" || fail "$key -P $pl: the server died during redis-benchmark (log: ${LOG[$key]})"
        fail "$key -P $pl: redis-benchmark exit $rc ($(head -c 200 "$csv.err" | tr '\n' ' '))"
        return 0
    fi
    cl="$(head -n 1 "$csv.ticks" 2>/dev/null || true)"
    is_uint "$cl" || cl=-
    pr=-
    alive "$key" && (( p1 >= p0 )) && pr=$(( p1 - p0 ))
    echo "$rps $cl $pr"
}

# Rows of $WORK/tp: "config pl round rps"; of $WORK/cpu: "config pl round client_ticks primary_ticks"
# (over the redis-benchmark run); of $WORK/sec: "peer pl round sec us_per_entry behind catchup_s ticks"
# (ticks: the secondary's CPU time from before the run until caught up).
if [[ "$SKIP_THROUGHPUT" != 1 ]]; then
    echo "### 1. SET throughput with 2 secondaries vs none (redis-benchmark -t set -c 50 -n $N -r 100000, medians over $ROUNDS round(s))"
    echo
    note "redis: \`taskset -c $SERVER_CPU $REDIS_SERVER --port \$P ${REDIS_SHOW}\`, replicas the same plus \`--replicaof $HOST \$P\`, unpinned"
    note "meridian: standalone \`taskset -c $SERVER_CPU meridian serve --port \$P --bind $HOST --save \"\" --appendonly no\`; datastore: \`meridian serve --region FILE\` ×3 (primary pinned, maxmemory 4gb noeviction, backlog 64mb)"
    note "\"primary, 0 attached\" (meridian only): the region primary with its two secondaries never started, i.e. the change log without shipping"
    note "client: \`taskset -c $CLIENT_CPU redis-benchmark -h $HOST -p \$P -t set -c 50 -n $N -r 100000 -P \$p -q --csv\`"
    : >"$WORK/tp"; : >"$WORK/sec"; : >"$WORK/cpu"
    CONFIGS=()
    redis_start redis-alone "$SERVER_CPU" && CONFIGS+=(redis-alone) || true
    meridian_alone_start meridian-alone "$SERVER_CPU" && CONFIGS+=(meridian-alone) || true
    repl_start meridian lone 0 && CONFIGS+=(meridian-lone) || true
    repl_start redis tp 2 && CONFIGS+=(redis-tp) || true
    repl_start meridian tp 2 && CONFIGS+=(meridian-tp) || true
    for (( round = 1; round <= ROUNDS; round++ )); do
        for pl in $PIPELINES; do
            for cfg in "${CONFIGS[@]}"; do
                key="$cfg"; [[ "$cfg" == *-alone ]] || key="$cfg-pri"
                alive "$key" || { fail "$key: gone before -P $pl round $round"; continue; }
                peer="${cfg%%-*}"
                declare -A t0=() a0=()
                if [[ "$cfg" == *-tp ]]; then
                    for s in s1 s2; do
                        t0[$s]="$(cpu_ticks "${PID[$cfg-$s]}")"
                        if [[ "$peer" == redis ]]; then a0[$s]="$(field "${PORT[$cfg-$s]}" stats total_commands_processed)"
                        else a0[$s]="$(applied meridian "${PORT[$cfg-$s]}")"; fi
                    done
                fi
                read -r rps cl_t pr_t <<<"$(bench "$key" "$pl" "$WORK/bench-$cfg-P$pl-r$round.csv")"
                if [[ -n "$rps" ]]; then
                    echo "$cfg $pl $round $rps" >>"$WORK/tp"
                    echo "$cfg $pl $round ${cl_t:--} ${pr_t:--}" >>"$WORK/cpu"
                fi
                if [[ "$cfg" == *-tp ]]; then
                    off="$(field "${PORT[$key]}" replication master_repl_offset)"
                    declare -A behind=()
                    for s in s1 s2; do
                        a="$(applied "$peer" "${PORT[$cfg-$s]}")"
                        behind[$s]="$(awk -v o="$off" -v a="$a" 'BEGIN { if (o == "" || a == "") print ""; else print o - a }')"
                    done
                    c0="$(now_ns)"
                    for s in s1 s2; do wait_synced "$peer" "$key" "$cfg-$s" || true; done
                    catchup="$(awk -v a="$c0" -v b="$(now_ns)" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }')"
                    for s in s1 s2; do
                        alive "$cfg-$s" || continue
                        t1="$(cpu_ticks "${PID[$cfg-$s]}")"
                        if [[ "$peer" == redis ]]; then a1="$(field "${PORT[$cfg-$s]}" stats total_commands_processed)"
                        else a1="$(applied meridian "${PORT[$cfg-$s]}")"; fi
                        us="$(awk -v t="$(( t1 - ${t0[$s]} ))" -v u="$TICK_US" -v a="${a0[$s]}" -v b="$a1" \
                            'BEGIN { if (b - a > 0) printf "%.3f\n", t * u / (b - a); else print "" }')"
                        echo "$peer $pl $round $s ${us:--} ${behind[$s]:--} $catchup $(( t1 - ${t0[$s]} ))" >>"$WORK/sec"
                    done
                    unset behind
                fi
                unset t0 a0
            done
        done
    done
    stop_all
    echo
    echo "| peer | pipeline | rps, no secondaries | rps, 2 secondaries | **fraction** | fraction until caught up | target | secondary CPU µs/entry | behind when the run ended (max; redis: bytes, meridian: entries) | catch-up s (max) |"
    echo '|---|---|---:|---:|---:|---:|---|---:|---:|---:|'
    tp_med() {  # tp_med CONFIG PL
        # shellcheck disable=SC2046
        median $(awk -v c="$1" -v l="$2" '$1 == c && $2 == l { print $4 }' "$WORK/tp")
    }
    tp_caught_up() {  # tp_caught_up PEER PL: median over rounds of N / (N / rps + catch-up s)
        # shellcheck disable=SC2046
        median $(awk -v p="$1" -v l="$2" -v n="$N" '
            FNR == NR { if ($1 == p "-tp" && $2 == l) rps[$3] = $4; next }
            $1 == p && $2 == l && ($3 in rps) && rps[$3] > 0 && !seen[$3]++ {
                printf "%.0f\n", n / (n / rps[$3] + $7)
            }' "$WORK/tp" "$WORK/sec")
    }
    for pl in $PIPELINES; do
        for peer in "${PEERS[@]}"; do
            alone="$(tp_med "$peer-alone" "$pl")"; two="$(tp_med "$peer-tp" "$pl")"
            caught="$(tp_caught_up "$peer" "$pl")"
            # shellcheck disable=SC2046
            us="$(median $(awk -v p="$peer" -v l="$pl" '$1 == p && $2 == l { print $5 }' "$WORK/sec"))"
            # shellcheck disable=SC2046
            behind="$(maxof $(awk -v p="$peer" -v l="$pl" '$1 == p && $2 == l { print $6 }' "$WORK/sec"))"
            # shellcheck disable=SC2046
            catchup="$(maxof $(awk -v p="$peer" -v l="$pl" '$1 == p && $2 == l { print $7 }' "$WORK/sec"))"
            if [[ "$peer" == meridian ]]; then target="≥ ${TARGET[$pl]:--}"; else target="(reference)"; fi
            printf '| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n' "$peer" "$pl" "$(fmt0 "$alone")" \
                "$(fmt0 "$two")" "$(ratio "$two" "$alone")" "$(ratio "$caught" "$alone")" "$target" "${us:--}" \
                "${behind:--}" "${catchup:--}"
        done
        lone="$(tp_med meridian-lone "$pl")"; alone="$(tp_med meridian-alone "$pl")"
        printf '| meridian, primary with 0 attached | %s | %s | %s | %s | | | | | |\n' "$pl" "$(fmt0 "$alone")" \
            "$(fmt0 "$lone")" "$(ratio "$lone" "$alone")"
    done
    echo
    echo "fraction = rps with 2 secondaries / rps of the same server without replication;" \
         "meridian's \"0 attached\" row puts the region primary (change log, no shipping) in the second column."
    echo "fraction until caught up: the same with each round's N requests spread over the run plus the time" \
         "both secondaries then took to catch up (a secondary that falls behind during the run does its work" \
         "after it, when it no longer competes with the primary)."
    echo "Secondary CPU µs/entry: user + system time of each secondary from before the run until it has caught up," \
         "divided by the entries it applied (redis: total_commands_processed delta on the replica;" \
         "meridian: applied_seq delta); median over both secondaries and all rounds."
    echo
    # The CPU budget, from $WORK/cpu and $WORK/sec: µs per SET = ticks × TICK_US / N.
    cpu_med() {  # cpu_med CONFIG PL COLUMN: median over rounds of that column's µs per SET
        # shellcheck disable=SC2046
        median $(awk -v c="$1" -v l="$2" -v k="$3" -v u="$TICK_US" -v n="$N" '
            $1 == c && $2 == l && $k ~ /^[0-9]+$/ { printf "%.3f\n", $k * u / n }' "$WORK/cpu")
    }
    sec_med() {  # sec_med PEER PL: median over rounds of both secondaries' µs per SET, summed
        # shellcheck disable=SC2046
        median $(awk -v p="$1" -v l="$2" -v u="$TICK_US" -v n="$N" '
            $1 == p && $2 == l && $8 ~ /^[0-9]+$/ { t[$3] += $8; k[$3]++ }
            END { for (r in t) if (k[r] == 2) printf "%.3f\n", t[r] * u / n }' "$WORK/sec")
    }
    sum3() {  # sum3 A B [C]: the sum with 3 decimals, "" when any is missing
        awk -v a="$1" -v b="$2" -v c="${3-0}" 'BEGIN {
            if (a == "" || b == "" || c == "") print ""; else printf "%.3f\n", a + b + c }'
    }
    NCPU="$(nproc)"
    echo "| peer | pipeline | client µs/SET | primary µs/SET | secondaries µs/SET (both) | total µs/SET | CPUs | fraction the CPUs allow |"
    echo '|---|---|---:|---:|---:|---:|---:|---:|'
    for pl in $PIPELINES; do
        for peer in "${PEERS[@]}"; do
            alone="$(tp_med "$peer-alone" "$pl")"
            cl="$(cpu_med "$peer-tp" "$pl" 4)"; pr="$(cpu_med "$peer-tp" "$pl" 5)"; se="$(sec_med "$peer" "$pl")"
            total="$(sum3 "$cl" "$pr" "$se")"
            allow="$(awk -v c="$NCPU" -v t="$total" -v a="$alone" 'BEGIN {
                if (t == "" || a == "" || t + 0 == 0 || a + 0 == 0) { print "-"; exit }
                f = c * 1e6 / t / a; printf "%.2f\n", (f > 1 ? 1 : f) }')"
            printf '| %s | %s | %s | %s | %s | %s | %s | **%s** |\n' "$peer" "$pl" "${cl:--}" "${pr:--}" "${se:--}" \
                "${total:--}" "$NCPU" "$allow"
            cl="$(cpu_med "$peer-alone" "$pl" 4)"; pr="$(cpu_med "$peer-alone" "$pl" 5)"
            total="$(sum3 "$cl" "$pr")"
            printf '| %s, no secondaries | %s | %s | %s | | %s | | |\n' "$peer" "$pl" "${cl:--}" "${pr:--}" "${total:--}"
        done
    done
    echo
    echo "CPU µs/SET: user + system time divided by N, median over rounds (one clock tick is" \
         "$(awk -v u="$TICK_US" -v n="$N" 'BEGIN { printf "%.3f", u / n }') µs/SET):" \
         "client = redis-benchmark (with its \`timeout\` wrapper) and primary = the primary server, both over the" \
         "redis-benchmark run; secondaries = both secondaries together, from before the run until caught up, as" \
         "above; total = client + primary + secondaries. fraction the CPUs allow = (CPUs × 10⁶ / total) / rps with" \
         "no secondaries, capped at 1.00: the highest fraction possible if every CPU were busy all the time with" \
         "no scheduling loss; compare it with \"fraction until caught up\", which counts the same secondary" \
         "work. \"no secondaries\" rows: the standalone server's run, for comparison."
    echo
fi

# ---------------------------------------------------------------- 2. latency

lag_field() { awk -F= -v k="$2" '$1 == k { print $2; exit }' "$1"; }

if [[ "$SKIP_LATENCY" != 1 ]]; then
    echo "### 2. Write → visible on a secondary, $LAG_RATE SET/s of 64-byte values for ${LAG_SECS}s"
    echo
    note "probe: \`taskset -c $CLIENT_CPU meridian-lagprobe --primary $HOST:\$P --secondary $HOST:\$S1 --rate $LAG_RATE --duration-secs $LAG_SECS --sample-every $LAG_SAMPLE --value-size 64 --timeout-ms $LAG_TIMEOUT_MS\`"
    note "one writer (paced batches every 1 ms, a fresh key per SET), one poller GETting every outstanding sampled key on secondary 1 until it answers; lag = reply instant − send instant (upper bound by one round trip)"
    : >"$WORK/lag"
    LAT_UP=()
    if [[ ! -x "$PROBE_BIN" ]]; then
        fail "probe: not built ($PROBE_BIN; cargo build --release -p relay --bin meridian-lagprobe)"
    else
        repl_start redis lat 2 && LAT_UP+=(redis) || true
        repl_start meridian lat 2 && LAT_UP+=(meridian) || true
    fi
    for (( round = 1; round <= ROUNDS; round++ )); do
        for peer in "${LAT_UP[@]}"; do
            k="$peer-lat"; out="$WORK/lag-$peer-r$round.txt"; rc=0
            alive "$k-pri" && alive "$k-s1" || { fail "$k: a server is gone before round $round"; continue; }
            timeout $(( LAG_SECS + 60 )) taskset -c "$CLIENT_CPU" "$PROBE_BIN" \
                --primary "$HOST:${PORT[$k-pri]}" --secondary "$HOST:${PORT[$k-s1]}" --rate "$LAG_RATE" \
                --duration-secs "$LAG_SECS" --sample-every "$LAG_SAMPLE" --value-size 64 \
                --timeout-ms "$LAG_TIMEOUT_MS" >"$out" 2>"$out.err" || rc=$?
            if (( rc != 0 )); then
                fail "$k round $round: probe exit $rc ($(head -c 300 "$out.err" | tr '\n' ' '))"
                continue
            fi
            row="$peer $round"
            for f in achieved_rate samples misses max_outstanding p50_ms p90_ms p99_ms p999_ms max_ms; do
                v="$(lag_field "$out" "$f")"; row+=" ${v:--}"
            done
            echo "$row" >>"$WORK/lag"
        done
    done
    # Convergence after the probe: both secondaries caught up, digests equal.
    declare -A DIGEST_OK=()
    for peer in "${LAT_UP[@]}"; do
        k="$peer-lat"; ok=yes
        for s in s1 s2; do wait_synced "$peer" "$k-pri" "$k-$s" || ok=no; done
        d0="$(cli "${PORT[$k-pri]}" DEBUG DIGEST)"
        for s in s1 s2; do [[ -n "$d0" && "$(cli "${PORT[$k-$s]}" DEBUG DIGEST)" == "$d0" ]] || ok=no; done
        DIGEST_OK[$peer]="$ok"
        [[ "$ok" == yes ]] || fail "$k: secondaries not converged after the probe (DEBUG DIGEST differs or not caught up)"
    done
    stop_all
    echo
    echo "| peer | round | achieved writes/s | samples | misses | max outstanding | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    echo '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
    sort -k2,2n -k1,1 "$WORK/lag" | awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
    if (( ROUNDS > 1 )); then
        for peer in "${PEERS[@]}"; do
            row="| $peer | median |"
            for c in 3 4 5 6 7 8 9 10 11; do
                # shellcheck disable=SC2046
                row+=" $(median $(awk -v p="$peer" -v c="$c" '$1 == p { print $c }' "$WORK/lag")) |"
            done
            echo "$row"
        done
    fi
    echo
    declare -A P50=() P99=()
    for peer in "${PEERS[@]}"; do
        # shellcheck disable=SC2046
        P50[$peer]="$(median $(awk -v p="$peer" '$1 == p { print $7 }' "$WORK/lag"))"
        # shellcheck disable=SC2046
        P99[$peer]="$(median $(awk -v p="$peer" '$1 == p { print $9 }' "$WORK/lag"))"
    done
    echo "meridian/redis: p50 $(ratio "${P50[meridian]:-}" "${P50[redis]:-}"), p99 $(ratio "${P99[meridian]:-}" "${P99[redis]:-}")" \
         "(< 1: meridian shows writes sooner). Converged after the probe (caught up, DEBUG DIGEST equal on all three):" \
         "redis ${DIGEST_OK[redis]:--}, meridian ${DIGEST_OK[meridian]:--}."
    echo
fi

# ---------------------------------------------------------------- 3. full sync

make_load_file() {  # FULLSYNC_KEYS SETs of key:NNNNNN -> val:NNNNNN (10 bytes each)
    awk -v n="$FULLSYNC_KEYS" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$10\r\nkey:%06d\r\n$10\r\nval:%06d\r\n", i, i }' \
        >"$WORK/load.resp"
}

load() {  # load KEY: the load file into KEY's server; checks DBSIZE
    local key="$1" rc=0 n
    timeout "$LOAD_TIMEOUT" redis-cli -h "$HOST" -p "${PORT[$key]}" --pipe --pipe-timeout 60 \
        <"$WORK/load.resp" >"$WORK/load-$key.out" 2>&1 || rc=$?
    n="$(cli "${PORT[$key]}" DBSIZE)"
    (( rc == 0 )) && [[ "$n" == "$FULLSYNC_KEYS" ]] && return 0
    fail "$key: load exit $rc, DBSIZE '$n' (expected $FULLSYNC_KEYS; $(tail -n 2 "$WORK/load-$key.out" | tr '\r\n' '  '))"
    return 1
}

# time_sync PRI SEC: seconds from just before SEC was started (by the caller,
# given T0 in ns) until DBSIZE on SEC equals PRI's, polled every 5 ms.
wait_dbsize() {  # wait_dbsize SEC WANT T0: prints seconds, or fails
    local sec="$1" want="$2" t0="$3" deadline_ns n
    deadline_ns=$(( t0 + FULLSYNC_TIMEOUT * 1000000000 ))
    while (( $(now_ns) < deadline_ns )); do
        alive "$sec" || { fail "$sec: died during the full sync (log: ${LOG[$sec]})"; return 1; }
        n="$(timeout 5 redis-cli -h "$HOST" -p "${PORT[$sec]}" DBSIZE 2>/dev/null | tr -d '\r' || true)"
        if [[ "$n" == "$want" ]]; then
            awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
            return 0
        fi
        sleep 0.005
    done
    fail "$sec: DBSIZE '$n' after ${FULLSYNC_TIMEOUT}s, expected $want"
    return 1
}

# sync_counts PEER KEY: "full partial" syncs the primary KEY has served so far.
sync_counts() {
    local sect=replication
    [[ "$1" == redis ]] && sect=stats
    cli "${PORT[$2]}" INFO "$sect" | awk -F: '$1 == "sync_full" { f = $2 } $1 == "sync_partial_ok" { p = $2 }
        END { print f + 0, p + 0 }'
}

if [[ "$SKIP_FULLSYNC" != 1 ]]; then
    echo "### 3. Full sync of $FULLSYNC_KEYS keys (10-byte keys and values) to a fresh secondary"
    echo
    note "load: \`redis-cli --pipe < load.resp\` into the primary with no secondary; then one fresh secondary is started and timed from just before its start until its DBSIZE equals the primary's (polled with redis-cli every 5 ms, ≤ ${FULLSYNC_TIMEOUT}s); the secondary is stopped after each run"
    note "redis modes set on the loaded primary with CONFIG SET: disk = \`repl-diskless-sync no\`; diskless 0 = \`yes\` + \`repl-diskless-sync-delay 0\`; default = \`yes\` + delay 5 (Redis 7's defaults); replica with its defaults (repl-diskless-load disabled), fresh dir"
    note "meridian: primary with \`repl-backlog-size = \"$FS_BACKLOG\"\` so that the loaded history has left the backlog and a fresh secondary must take a snapshot (full sync); the extra row uses 64mb, where a fresh secondary may instead replay the whole log from the backlog (the syncs column says which happened)"
    make_load_file
    : >"$WORK/fs"
    declare -A FS_UP=()
    if redis_start redis-fs-pri "$SERVER_CPU" && load redis-fs-pri; then FS_UP[redis]=1; fi
    if meridian_ds fs "$FS_BACKLOG" && meridian_start meridian-fs-pri fs us-east-1 "$SERVER_CPU" \
        && load meridian-fs-pri; then FS_UP[meridian]=1; fi
    if meridian_ds fsb 64mb && meridian_start meridianb-fs-pri fsb us-east-1 "$SERVER_CPU" \
        && load meridianb-fs-pri; then FS_UP[meridianb]=1; fi
    FS_MODES=("redis disk" "redis diskless-0" "redis default" "meridian fs" "meridianb fsb")
    for (( round = 1; round <= ROUNDS; round++ )); do
        for m in "${FS_MODES[@]}"; do
            peer="${m%% *}"; mode="${m#* }"; pri="$peer-fs-pri"
            [[ -n "${FS_UP[$peer]:-}" ]] || continue
            alive "$pri" || { fail "$pri: gone before round $round"; FS_UP[$peer]=""; continue; }
            p="${PORT[$pri]}"
            kind=redis; [[ "$peer" == redis ]] || kind=meridian
            c0="$(sync_counts "$kind" "$pri")"
            f0="$(field "$p" stats total_forks)"
            rep="$peer-fs-rep"; dir="$WORK/dir-$rep-$mode-$round"; mkdir -p "$dir"
            LOG[$rep]="$WORK/$rep-$mode-$round.log"
            if [[ "$peer" == redis ]]; then
                case "$mode" in
                    disk) cli "$p" CONFIG SET repl-diskless-sync no >/dev/null ;;
                    diskless-0) cli "$p" CONFIG SET repl-diskless-sync yes repl-diskless-sync-delay 0 >/dev/null ;;
                    default) cli "$p" CONFIG SET repl-diskless-sync yes repl-diskless-sync-delay 5 >/dev/null ;;
                esac
                free_port || { fail "$rep: no free port"; continue; }
                PORT[$rep]="$FREE_PORT"
                t0="$(now_ns)"
                ( cd "$dir" && exec "$REDIS_SERVER" --port "${PORT[$rep]}" "${REDIS_ARGS[@]}" --dir . \
                    --replicaof "$HOST" "$p" ) >"${LOG[$rep]}" 2>&1 &
            else
                PORT[$rep]="${M_CLIENT[$mode-eu-west-1]}"
                t0="$(now_ns)"
                ( cd "$dir" && exec "$MERIDIAN_BIN" serve --region "$WORK/ds-$mode/eu-west-1.toml" ) \
                    >"${LOG[$rep]}" 2>&1 &
            fi
            PID[$rep]=$!
            if secs="$(wait_dbsize "$rep" "$FULLSYNC_KEYS" "$t0")"; then
                c1="$(sync_counts "$kind" "$pri")"
                syncs="$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " ")
                    printf "full:%d,partial:%d\n", y[1] - x[1], y[2] - x[2] }')"
                # The primary's pause: its fork, when it forked for this sync.
                pause=-
                if [[ "$(field "$p" stats total_forks)" != "$f0" ]]; then
                    pause="$(awk -v u="$(field "$p" stats latest_fork_usec)" 'BEGIN { printf "%.1f", u / 1000 }')"
                fi
                echo "$peer $mode $round $secs $syncs $pause" >>"$WORK/fs"
            fi
            stop_server "$rep"
            # The next sync starts from an idle primary (no fork child left).
            if [[ "$peer" == redis ]]; then
                for (( i = 0; i < 200; i++ )); do
                    [[ "$(field "$p" persistence rdb_bgsave_in_progress)" == 0 ]] && break
                    sleep 0.05
                done
            fi
        done
    done
    stop_all
    echo
    declare -A FS=()
    best=""
    for m in "${FS_MODES[@]}"; do
        # shellcheck disable=SC2046
        FS[$m]="$(median $(awk -v p="${m%% *}" -v mo="${m#* }" '$1 == p && $2 == mo { print $4 }' "$WORK/fs"))"
        if [[ "$m" == redis* && -n "${FS[$m]}" ]]; then
            best="$(awk -v a="$best" -v b="${FS[$m]}" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }')"
        fi
    done
    echo "| peer, mode | seconds (median) | runs | syncs served by the primary, per run | primary's pause (fork), ms, per run | ratio vs Redis's best |"
    echo '|---|---:|---|---|---|---:|'
    for m in "${FS_MODES[@]}"; do
        runs="$(awk -v p="${m%% *}" -v mo="${m#* }" '$1 == p && $2 == mo { printf "%s%s", sep, $4; sep = " " }' "$WORK/fs")"
        syncs="$(awk -v p="${m%% *}" -v mo="${m#* }" '$1 == p && $2 == mo { printf "%s%s", sep, $5; sep = " " }' "$WORK/fs")"
        pauses="$(awk -v p="${m%% *}" -v mo="${m#* }" '$1 == p && $2 == mo { printf "%s%s", sep, $6; sep = " " }' "$WORK/fs")"
        case "$m" in
            "redis disk") label="redis, disk RDB (repl-diskless-sync no)" ;;
            "redis diskless-0") label="redis, diskless, delay 0" ;;
            "redis default") label="redis, default (diskless, delay 5 s)" ;;
            "meridian fs") label="**meridian**, backlog $FS_BACKLOG (snapshot)" ;;
            *) label="meridian, backlog 64mb (log may still be in the backlog)" ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "${FS[$m]:-FAIL}" "${runs:--}" "${syncs:--}" \
            "${pauses:--}" "$(ratio "${FS[$m]}" "$best")"
    done
    echo
    echo "ratio < 1: faster than Redis's best mode. syncs: full / partial resyncs the primary counted during" \
         "that run (redis: INFO stats sync_full, sync_partial_ok; meridian: INFO replication)." \
         "pause: INFO stats latest_fork_usec when total_forks moved during the run (both peers fork" \
         "for the snapshot; clients wait that long), - when the primary did not fork."
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
