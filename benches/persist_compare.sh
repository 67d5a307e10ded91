#!/usr/bin/env bash
# Meridian vs Redis persistence, side by side, in one run:
#   1. write throughput with `appendonly yes, appendfsync everysec` on both
#      (redis-benchmark -t set at each of PIPELINES, a fresh server and an
#      empty --dir per run), the same with `appendonly no` as a reference, the
#      servers' CPU time per request and the bytes left in --dir;
#   2. a background snapshot of KEYS keys: BGSAVE timed from the request to
#      completion (INFO persistence polled every 10 ms), the file's size, then
#      the load time: a restart on that file timed from process start to the
#      first PONG with DBSIZE == KEYS (Redis answers -LOADING until then);
#   3. client latency during background snapshots: with KEYS keys loaded,
#      redis-benchmark -t set,get -P 1 -c 50 once with no snapshot and once
#      with BGSAVE run back to back for the whole run; p50/p99/max per server
#      and p99 with/without;
#   4. the context needed to compare runs (versions, machine, disk, date,
#      command), and a summary of the Meridian/Redis ratios against the targets.
#
# Parts 2 and 3 run both servers with `appendonly no`, so a restart loads the
# snapshot file (Redis with appendonly yes would load its AOF instead). Every
# server gets `--save ""`; servers run on SERVER_CPU, redis-benchmark and the
# polling redis-cli calls on CLIENT_CPU. Every wait is bounded by a timeout and
# every server started here is killed on exit. Only 127.0.0.1 is used. Exit
# status: 0 when both peers completed every part, 1 when a peer failed
# somewhere (the rest still runs and prints), 2 on a usage or environment error.
#
# Environment (defaults in brackets):
#   N              SET requests per part-1 run (keys from -r 100000) [1000000]
#   PIPELINES      part-1 -P values, space- or comma-separated [16 1]
#   ROUNDS         rounds of (redis, meridian) alternation in every part;
#                  medians reported [3]
#   KEYS           keys loaded for parts 2 and 3: key:NNNNNNNNNNNN (the names
#                  redis-benchmark -r uses) with 10-byte values [1000000]
#   P3_N           requests per test (SET, then GET, -r KEYS) in part 3 [500000]
#   SKIP_WRITE=1 / SKIP_SNAPSHOT=1 / SKIP_LATENCY=1   skip part 1 / 2 / 3
#   MERIDIAN_BIN   meridian binary [<repo>/target/release/meridian]
#   MERIDIAN_ARGS  extra arguments appended to meridian's command line [none]
#   REDIS_ARGS     extra arguments appended to redis-server's command line [none]
#   BOTH_ARGS      extra arguments for both (same names), e.g.
#                  "--bgsave_cpulist 1" to run save children on the client CPU [none]
#   PEER_ONLY=1    smoke-test the harness: the "meridian" side is a second
#                  redis-server (MERIDIAN_BIN defaults to redis-server and is
#                  started with Redis's options). Ratios should be ~1.0.
#                  Implied when MERIDIAN_BIN's name starts with redis-server.
#   REDIS_BIN      [redis-server]
#   SERVER_CPU / CLIENT_CPU   CPUs for servers / clients [0 / 1]
#   START_TIMEOUT  seconds for an empty server to answer PING [20]
#   SNAP_TIMEOUT   seconds for one BGSAVE to finish, or a restart to load [120]
#   BENCH_TIMEOUT  seconds per redis-benchmark run [30 + requests/5000]
#   LOAD_TIMEOUT   seconds for the `redis-cli --pipe` load of KEYS keys [180]
#   DATA_DIR       parent of the servers' --dir directories (its file system
#                  is what is measured) [OUT_DIR or the temp dir]
#   OUT_DIR        keep raw CSVs and server logs here (default: temp, removed);
#                  the servers' data directories are removed either way
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly HOST=127.0.0.1

N="${N:-1000000}"
PIPELINES="${PIPELINES:-16 1}"
ROUNDS="${ROUNDS:-3}"
KEYS="${KEYS:-1000000}"
P3_N="${P3_N:-500000}"
SKIP_WRITE="${SKIP_WRITE:-0}"
SKIP_SNAPSHOT="${SKIP_SNAPSHOT:-0}"
SKIP_LATENCY="${SKIP_LATENCY:-0}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
START_TIMEOUT="${START_TIMEOUT:-20}"
SNAP_TIMEOUT="${SNAP_TIMEOUT:-120}"
LOAD_TIMEOUT="${LOAD_TIMEOUT:-180}"
MERIDIAN_ARGS="${MERIDIAN_ARGS:-}"
REDIS_ARGS="${REDIS_ARGS:-}"
BOTH_ARGS="${BOTH_ARGS:-}"
PEER_ONLY="${PEER_ONLY:-0}"
if [[ "$PEER_ONLY" == 1 ]]; then
    MERIDIAN_BIN="${MERIDIAN_BIN:-redis-server}"
else
    MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
    [[ "$(basename "$MERIDIAN_BIN")" == redis-server* ]] && PEER_ONLY=1
fi
# Column label of the second peer: never call a Redis "meridian" in the output.
if [[ "$PEER_ONLY" == 1 ]]; then B_LABEL="redis#2"; else B_LABEL="meridian"; fi
readonly PEERS=(redis meridian)
label() { if [[ "$1" == meridian ]]; then echo "$B_LABEL"; else echo "$1"; fi; }

die() { echo "error: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; die "no arguments expected; configure with the environment variables above" ;;
esac
note() { echo "- $*"; }  # output is Markdown, ready to paste into RESULTS.md
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

for v in N ROUNDS KEYS P3_N START_TIMEOUT SNAP_TIMEOUT LOAD_TIMEOUT SERVER_CPU CLIENT_CPU; do
    is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
done
for v in N ROUNDS KEYS P3_N START_TIMEOUT SNAP_TIMEOUT LOAD_TIMEOUT; do
    (( ${!v} > 0 )) || die "$v must be positive"
done
(( KEYS <= 100000000 )) || die "KEYS must be at most 100000000"
read -r -a PL_LIST <<<"${PIPELINES//,/ }"
(( ${#PL_LIST[@]} > 0 )) || die "PIPELINES must list at least one -P value"
for pl in "${PL_LIST[@]}"; do
    if ! is_uint "$pl" || (( pl == 0 )); then
        die "PIPELINES must be positive integers (got '$PIPELINES')"
    fi
done
PIPELINES="${PL_LIST[*]}"
if [[ -n "${BENCH_TIMEOUT:-}" ]]; then
    if ! is_uint "$BENCH_TIMEOUT" || (( BENCH_TIMEOUT == 0 )); then
        die "BENCH_TIMEOUT must be a positive integer (got '$BENCH_TIMEOUT')"
    fi
    W_TIMEOUT="$BENCH_TIMEOUT"; L_TIMEOUT="$BENCH_TIMEOUT"
else
    W_TIMEOUT=$(( 30 + N / 5000 )); L_TIMEOUT=$(( 30 + 2 * P3_N / 5000 ))
fi
[[ -n "${EPOCHREALTIME:-}" ]] || die "bash 5 or later is needed (EPOCHREALTIME)"
for tool in redis-benchmark redis-cli taskset timeout awk du stat "$REDIS_BIN"; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH"
done

# ---------------------------------------------------------------- bookkeeping

if [[ -n "${OUT_DIR:-}" ]]; then
    mkdir -p "$OUT_DIR"; WORK="$(cd "$OUT_DIR" && pwd)"; KEEP_WORK=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/meridian-persist.XXXXXX")"; KEEP_WORK=0
fi
if [[ -n "${DATA_DIR:-}" ]]; then
    mkdir -p "$DATA_DIR"
    DATA="$(mktemp -d "$(cd "$DATA_DIR" && pwd)/meridian-persist-data.XXXXXX")"
else
    DATA="$WORK/data"; mkdir -p "$DATA"
fi
declare -A PID=() PORT=()
USED_PORTS=()
FAILURES=()  # one line per failed step, printed at the end
BG_PIDS=()   # redis-benchmark runs and BGSAVE loops in flight

fail() { FAILURES+=("$*"); echo "- **FAILED:** $*"; }

stop_server() {
    local name="$1" pid="${PID[$1]:-}" i
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for (( i = 0; i < 100; i++ )); do   # up to 10 s for a clean exit
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

cleanup() {
    local name p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for name in "${!PID[@]}"; do stop_server "$name"; done
    rm -rf "$DATA"
    if [[ "$KEEP_WORK" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nobody listens on, not handed out before in this run, and below the
# kernel's ephemeral range (a port in that range can be the source port of
# some client's connection, which a connect probe does not see). The race
# with other processes is handled by start_server retrying.
free_port() {
    local p i lo=20000 hi
    hi="$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    (( hi > lo + 1000 )) || { lo=10000; hi=20000; }
    for (( i = 0; i < 500; i++ )); do
        p=$(( lo + RANDOM % (hi - lo) ))
        [[ " ${USED_PORTS[*]} " == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
            echo "$p"; return 0
        fi
    done
    return 1
}

# cli PORT ARGS...: one bounded redis-cli call on the client CPU, reply on stdout.
cli() {
    local port="$1"; shift
    timeout 10 taskset -c "$CLIENT_CPU" redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null \
        | tr -d '\r'
}

# Polls that are timed talk RESP over bash's /dev/tcp on one connection: a
# redis-cli process per poll would cost more than the 10 ms between polls.
# resp_open PORT: connects, fd in RESP_FD; 1 when refused.
resp_open() { exec {RESP_FD}<>"/dev/tcp/$HOST/$1"; } 2>/dev/null
resp_close() {
    if [[ -n "${RESP_FD:-}" ]]; then exec {RESP_FD}>&-; fi
    RESP_FD=""
}

# resp_call WORD...: sends an inline command on RESP_FD and reads the reply
# into RESP (status and integer without their prefix, an error with its "-",
# a bulk string with \r removed). 1 on a timeout, a closed connection or a
# reply it does not read (arrays).
resp_call() {
    local line len
    # In a subshell: a write to a connection the server closed raises SIGPIPE.
    ( printf '%s\r\n' "$*" >&"$RESP_FD" ) 2>/dev/null || return 1
    IFS= read -r -t 5 line <&"$RESP_FD" || return 1
    line="${line%$'\r'}"
    case "$line" in
        '$-1') RESP="" ;;
        '$'*)
            len="${line#?}"
            is_uint "$len" || return 1
            IFS= read -r -N "$(( len + 2 ))" -t 5 RESP <&"$RESP_FD" || return 1
            RESP="${RESP//$'\r'/}" ;;
        [+:]*) RESP="${line#?}" ;;
        -*) RESP="$line" ;;
        *) return 1 ;;
    esac
}

ping_probe() {  # ping_probe PORT: 0 when a new connection gets PONG
    local rc=0
    resp_open "$1" || return 1
    resp_call PING || rc=1
    [[ "${RESP:-}" == PONG ]] || rc=1
    resp_close
    return "$rc"
}

now() { echo "${EPOCHREALTIME/[,.]/}"; }   # microseconds since the epoch
ms_since() {  # ms_since T0 [T1]: milliseconds between two now() values
    awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.1f\n", (b - a) / 1000 }'
}

# server_argv PEER PORT DIR APPENDONLY: prints the argv (NUL-separated) that
# starts PEER with its data in DIR.
server_argv() {
    local peer="$1" port="$2" dir="$3" aof="$4"
    if [[ "$peer" == redis || "$PEER_ONLY" == 1 ]]; then
        local bin="$REDIS_BIN"; [[ "$peer" == meridian ]] && bin="$MERIDIAN_BIN"
        # shellcheck disable=SC2086  # REDIS_ARGS and BOTH_ARGS are split on purpose
        printf '%s\0' "$bin" --port "$port" --bind "$HOST" --dir "$dir" --appendonly "$aof" \
            --appendfsync everysec --save "" --daemonize no --logfile "" $REDIS_ARGS $BOTH_ARGS
    else
        # shellcheck disable=SC2086  # MERIDIAN_ARGS is split on purpose
        printf '%s\0' "$MERIDIAN_BIN" serve --port "$port" --bind "$HOST" --dir "$dir" \
            --appendonly "$aof" --appendfsync everysec --save "" $MERIDIAN_ARGS $BOTH_ARGS
    fi
}

show_argv() {  # human-readable form of server_argv, quoting empty args
    local a out=""
    while IFS= read -r -d '' a; do
        [[ -z "$a" ]] && a='""'
        out+="$a "
    done < <(server_argv "$@")
    echo "taskset -c $SERVER_CPU ${out% }"
}

snap_file() {  # the snapshot file a peer writes in its --dir
    if [[ "$1" == meridian && "$PEER_ONLY" != 1 ]]; then echo dump.msnp; else echo dump.rdb; fi
}

# start_server PEER TAG DIR APPENDONLY [WAIT [POLL]]: starts PEER on a free
# port with --dir DIR (created), waits up to WAIT seconds (START_TIMEOUT) for
# PONG, polling every POLL seconds (0.2); tries another port when the bind lost
# a race. Sets PID[PEER], PORT[PEER], and T_START / T_PONG (now()
# just before the exec and at the first PONG). Returns non-zero (after
# logging) on failure.
start_server() {
    local attempt rc
    for attempt in 1 2 3; do
        rc=0; start_server_once "$attempt" "$@" || rc=$?
        (( rc == 3 )) || return "$rc"
    done
    fail "$(label "$1") ($2): every port tried was already in use"
    return 1
}

# start_server_once ATTEMPT PEER TAG DIR APPENDONLY [WAIT [POLL]]: 0 = up,
# 3 = port in use, 1 = failed.
start_server_once() {
    local attempt="$1" peer="$2" tag="$3" dir="$4" aof="$5" wait="${6:-$START_TIMEOUT}"
    local poll="${7:-0.2}" port log argv=() deadline
    port="$(free_port)" || { fail "$(label "$peer"): no free port found"; return 1; }
    USED_PORTS+=("$port")
    if [[ "$peer" == meridian && "$PEER_ONLY" != 1 && ! -x "$MERIDIAN_BIN" ]]; then
        fail "meridian: binary not found at $MERIDIAN_BIN (cargo build --release -p meridian)"
        return 1
    fi
    mkdir -p "$dir"
    mapfile -d '' argv < <(server_argv "$peer" "$port" "$dir" "$aof")
    log="$WORK/$peer-$tag.log"
    (( attempt == 1 )) || log="$WORK/$peer-$tag-$attempt.log"
    T_START="$(now)"
    ( cd "$WORK" && exec taskset -c "$SERVER_CPU" "${argv[@]}" ) >>"$log" 2>&1 &
    PID[$peer]=$!
    PORT[$peer]=$port
    deadline=$(( SECONDS + wait ))
    while (( SECONDS < deadline )); do
        if ! kill -0 "${PID[$peer]}" 2>/dev/null; then
            local rc=0 last
            wait "${PID[$peer]}" 2>/dev/null || rc=$?
            unset "PID[$peer]"
            last="$(tail -n 3 "$log" | tr '\n' ' ')"
            grep -qi 'address already in use' "$log" && return 3
            fail "$(label "$peer") ($tag): exited with status $rc before answering PING" \
                 "(log: ${last:-empty})"
            return 1
        fi
        if ping_probe "$port"; then T_PONG="$(now)"; return 0; fi
        sleep "$poll"
    done
    fail "$(label "$peer") ($tag): no PONG on $HOST:$port within ${wait}s (log: $log)"
    stop_server "$peer"; return 1
}

median() {  # median of the numbers given as arguments ("" if none)
    printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g \
        | awk '{ v[NR] = $1 } END {
                 if (NR == 0) exit
                 if (NR % 2) print v[(NR + 1) / 2]
                 else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# col FILE FIELD=VALUE... -> column OUT of FILE's rows matching every
# FIELD=VALUE (1-based TAB-separated fields); usage: col FILE OUT F=V...
col() {
    local file="$1" out="$2"; shift 2
    awk -F'\t' -v out="$out" -v conds="$*" 'BEGIN { n = split(conds, c, " ") }
        { for (i = 1; i <= n; i++) { split(c[i], kv, "="); if ($kv[1] != kv[2]) next }
          print $out }' "$file"
}

# med FILE OUT F=V...: median of a column over the matching rows.
med() {
    # shellcheck disable=SC2046  # one number per line, split on purpose
    median $(col "$@")
}

# Percentage of all CPUs busy over one second, from /proc/stat. Other work on
# a 2-core box (a cargo build) moves the results more than most code changes.
cpu_busy() {
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
        echo "- WARNING: the machine is busy $1; throughput, latency and timings are noisy, rerun when idle"
    fi
}

fmt0() {  # fmt0 X -> X rounded to an integer, "FAIL" when missing
    awk -v x="$1" 'BEGIN { if (x == "") print "FAIL"; else printf "%.0f\n", x }'
}

ratio() {  # ratio A B -> A/B with 2 decimals, "-" when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"
        else printf "%.2f\n", a / b }'
}

with_unit() {  # with_unit VALUE UNIT -> "VALUE UNIT", or FAIL
    if [[ -z "$1" || "$1" == FAIL ]]; then echo FAIL; else echo "$1 $2"; fi
}

fmt1() {  # fmt1 X -> X with 1 decimal, "FAIL" when missing
    awk -v x="$1" 'BEGIN { if (x == "") print "FAIL"; else printf "%.1f\n", x }'
}

mib() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else printf "%.1f\n", x / 1048576 }'; }

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks,
# including children it has waited for (Redis's fork children for AOF
# rewrites and BGSAVE; Meridian does that work in threads).
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))

# parse_csv TAG < CSV: redis-benchmark --csv output to rows
# "TAG<TAB>test<TAB>rps<TAB>p50<TAB>p99<TAB>max" (TAG may hold TABs). Fields
# are split with quotes honoured; columns are looked up by header name. Exit 1
# when no row has a positive rps.
parse_csv() {
    awk -v tag="$1" '
        function split_csv(line, f,   n, i, c, q, cur) {
            n = 0; cur = ""; q = 0
            for (i = 1; i <= length(line); i++) {
                c = substr(line, i, 1)
                if (q) {
                    if (c != "\"") cur = cur c
                    else if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ }
                    else q = 0
                } else if (c == "\"") q = 1
                else if (c == ",") { f[++n] = cur; cur = "" }
                else if (c != "\r") cur = cur c
            }
            f[++n] = cur
            return n
        }
        { nf = split_csv($0, f) }
        !hdr {
            for (i = 1; i <= nf; i++) if (f[i] == "test") hdr = 1
            if (hdr) for (i = 1; i <= nf; i++) col[f[i]] = i
            next
        }
        !(("rps" in col) && ("p50_latency_ms" in col) && ("p99_latency_ms" in col) \
          && ("max_latency_ms" in col)) { next }
        {
            t = f[col["test"]]; gsub(/[\t| ]/, "_", t)
            if (t != "" && f[col["rps"]] + 0 > 0) {
                print tag "\t" t "\t" f[col["rps"]] "\t" f[col["p50_latency_ms"]] "\t" \
                    f[col["p99_latency_ms"]] "\t" f[col["max_latency_ms"]]; n++
            }
        }
        END { exit n > 0 ? 0 : 1 }'
}

# bench PEER WHAT TIMEOUT CSV ARGS...: runs redis-benchmark ARGS against PEER
# on the client CPU, in the background so that a server that dies mid-run is
# noticed within a fraction of a second. Sets BENCH_RC (124 = timeout) and
# BENCH_MS (wall time). Starts BGSAVE_LOOP (a command) beside it if set.
BGSAVE_LOOP=""
bench() {
    local peer="$1" what="$2" tmo="$3" csv="$4" bpid lpid="" t0; shift 4
    echo "- $(label "$peer") $what: \`taskset -c $CLIENT_CPU redis-benchmark -h $HOST -p \$PORT $*\`"
    BENCH_RC=0
    t0="$(now)"
    timeout "$tmo" taskset -c "$CLIENT_CPU" redis-benchmark -h "$HOST" -p "${PORT[$peer]}" "$@" \
        >"$csv" 2>"${csv%.csv}.err" &
    bpid=$!
    BG_PIDS=("$bpid")
    if [[ -n "$BGSAVE_LOOP" ]]; then
        $BGSAVE_LOOP "$peer" "$bpid" &
        lpid=$!
        BG_PIDS+=("$lpid")
    fi
    while kill -0 "$bpid" 2>/dev/null; do
        kill -0 "${PID[$peer]}" 2>/dev/null || { kill -TERM "$bpid" 2>/dev/null; break; }
        sleep 0.1
    done
    wait "$bpid" || BENCH_RC=$?
    BENCH_MS="$(ms_since "$t0")"
    # The loop ends by itself once the benchmark is gone and its save is done.
    [[ -n "$lpid" ]] && { wait "$lpid" || true; }
    BG_PIDS=()
    return 0
}

bench_failed() {  # bench_failed PEER WHAT ROWS: logs why a bench run gave no rows
    local peer="$1" what="$2" csv="$3"
    if ! kill -0 "${PID[$peer]:-0}" 2>/dev/null; then
        fail "$(label "$peer") $what: the server died during redis-benchmark (exit $BENCH_RC)"
    elif (( BENCH_RC == 124 )); then
        fail "$(label "$peer") $what: redis-benchmark timed out"
    else
        fail "$(label "$peer") $what: redis-benchmark exit $BENCH_RC," \
             "$(head -c 300 "${csv%.csv}.err" | tr '\n' ' ')"
    fi
}

info_field() {  # info_field TEXT NAME -> value of NAME: in an INFO reply
    awk -F: -v n="$2" '$1 == n { print $2; exit }' <<<"$1"
}

# The load file: KEYS SETs of key:NNNNNNNNNNNN (redis-benchmark's -r key
# names, so part 3's GETs hit) to a 10-byte value vNNNNNNNNN.
make_load_file() {
    [[ -s "$WORK/load.resp" ]] && return 0
    awk -v n="$KEYS" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$10\r\nv%09d\r\n", i, i }' \
        >"$WORK/load.resp"
}

# load_keys PEER: loads the KEYS keys into PEER's running server.
load_keys() {
    local peer="$1" port="${PORT[$1]}" rc=0 out dbsize t0
    out="$WORK/load-$peer.out"
    t0="$(now)"
    timeout "$LOAD_TIMEOUT" taskset -c "$CLIENT_CPU" redis-cli -h "$HOST" -p "$port" \
        --pipe --pipe-timeout 60 <"$WORK/load.resp" >"$out" 2>&1 || rc=$?
    if (( rc != 0 )); then
        fail "$(label "$peer"): redis-cli --pipe exit $rc ($(tail -n 2 "$out" | tr '\r\n' '  '))"
        return 1
    fi
    dbsize="$(cli "$port" DBSIZE || true)"
    if [[ "$dbsize" != "$KEYS" ]]; then
        fail "$(label "$peer"): DBSIZE is '$dbsize' after the load, expected $KEYS"
        return 1
    fi
    note "$(label "$peer"): $KEYS keys loaded in $(ms_since "$t0") ms"
}

# ---------------------------------------------------------------- 4. context

redis_version="$("$REDIS_BIN" --version 2>/dev/null || echo unknown)"
if [[ "$PEER_ONLY" == 1 ]]; then
    meridian_version="(PEER_ONLY: second peer is $("$MERIDIAN_BIN" --version 2>/dev/null || echo unknown))"
elif [[ -x "$MERIDIAN_BIN" ]]; then
    meridian_version="$(timeout 5 "$MERIDIAN_BIN" --version 2>/dev/null | head -n 1 || true)"
    [[ -n "$meridian_version" ]] || meridian_version="unknown (--version printed nothing)"
    meridian_version+=" (binary $MERIDIAN_BIN, built $(date -r "$MERIDIAN_BIN" '+%F %T'))"
else
    meridian_version="not built ($MERIDIAN_BIN missing)"
fi
git_rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || git_rev+="+dirty"

cmd_env=""
for v in N PIPELINES ROUNDS KEYS P3_N SKIP_WRITE SKIP_SNAPSHOT SKIP_LATENCY PEER_ONLY \
         MERIDIAN_BIN MERIDIAN_ARGS REDIS_ARGS BOTH_ARGS REDIS_BIN SERVER_CPU CLIENT_CPU START_TIMEOUT SNAP_TIMEOUT \
         BENCH_TIMEOUT LOAD_TIMEOUT DATA_DIR OUT_DIR; do
    val="$(printenv "$v" || true)"
    [[ -n "$val" ]] || continue
    if [[ "$val" =~ ^[A-Za-z0-9_.,/:=+-]+$ ]]; then cmd_env+="$v=$val "   # no quoting needed
    else cmd_env+="$v='${val//\'/\'\\\'\'}' "; fi
done
fs="$(df -PT "$DATA" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 " (" $7 ")" }')"

echo "## Meridian vs Redis, persistence — $(date -u '+%F %T UTC')"
echo
echo "- command: \`${cmd_env}benches/persist_compare.sh\`"
echo "- redis: $redis_version"
echo "- meridian: $meridian_version, repo at $git_rev"
echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
     "$(uname -sr), $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "- data directories: ${fs:-unknown file system}; vm.overcommit_memory=$(cat /proc/sys/vm/overcommit_memory 2>/dev/null || echo '?')," \
     "transparent hugepages: $(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')" \
     "(both matter to Redis's fork)"
busy_line "at start"
echo "- servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU; N=$N, PIPELINES=$PIPELINES," \
     "ROUNDS=$ROUNDS, KEYS=$KEYS, P3_N=$P3_N"
if [[ "$PEER_ONLY" == 1 ]]; then
    echo "- PEER_ONLY: the second column is another redis-server, not meridian (harness smoke test)"
fi
echo

declare -A SUMMARY=()  # summary-table cells, keyed "row,column"

# ---------------------------------------------------------------- 1. writes

# write_run PEER AOF PL ROUND: a fresh server on an empty dir, one SET run.
# Appends "peer aof pl round rps p99 cpu_us_per_req dir_bytes" to $WORK/writes.
write_run() {
    local peer="$1" aof="$2" pl="$3" round="$4" tag dir csv ticks0 ticks bytes info
    tag="w-$aof-P$pl-r$round"; dir="$DATA/$peer-$tag"; csv="$WORK/$peer-$tag.csv"
    start_server "$peer" "$tag" "$dir" "$aof" || return 1
    info="$(cli "${PORT[$peer]}" INFO persistence || true)"
    if [[ "$(info_field "$info" aof_enabled)" != "$([[ $aof == yes ]] && echo 1 || echo 0)" ]]; then
        fail "$(label "$peer") appendonly $aof: INFO persistence says aof_enabled:$(info_field "$info" aof_enabled)"
        stop_server "$peer"; return 1
    fi
    ticks0="$(cpu_ticks "${PID[$peer]}")"
    bench "$peer" "appendonly $aof -P $pl round $round" "$W_TIMEOUT" "$csv" \
        -t set -c 50 -n "$N" -r 100000 -P "$pl" -q --csv
    ticks=$(( $(cpu_ticks "${PID[$peer]}") - ticks0 ))
    if (( BENCH_RC != 0 )) || ! parse_csv "x" <"$csv" >"$csv.rows"; then
        bench_failed "$peer" "appendonly $aof -P $pl round $round" "$csv"
        stop_server "$peer"; rm -rf "$dir"; return 1
    fi
    info="$(cli "${PORT[$peer]}" INFO persistence || true)"
    stop_server "$peer"   # a clean stop flushes what everysec had not yet written
    bytes="$(du -sb "$dir" | cut -f1)"
    rm -rf "$dir"
    awk -F'\t' -v p="$peer" -v a="$aof" -v l="$pl" -v r="$round" -v t="$ticks" -v tu="$TICK_US" \
        -v n="$N" -v b="$bytes" '$2 == "SET" {
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\n", p, a, l, r, $3, $5, t * tu / n, b }' \
        "$csv.rows" >>"$WORK/writes"
}

if [[ "$SKIP_WRITE" != 1 ]]; then
    echo "### 1. Write throughput, appendonly yes / appendfsync everysec (redis-benchmark -t set -c 50 -n $N -r 100000, medians over $ROUNDS round(s))"
    echo
    note "redis: \`$(show_argv redis "\$PORT" "\$DIR" 'yes|no')\`"
    note "$B_LABEL: \`$(show_argv meridian "\$PORT" "\$DIR" 'yes|no')\`"
    note "a fresh server on an empty --dir for every run; runs alternate redis, $B_LABEL"
    : >"$WORK/writes"
    for (( round = 1; round <= ROUNDS; round++ )); do
        for pl in $PIPELINES; do
            for aof in yes no; do
                for peer in "${PEERS[@]}"; do write_run "$peer" "$aof" "$pl" "$round" || true; done
            done
        done
    done
    echo
    printf '| appendonly | pipeline | redis rps | %s rps | **ratio** | redis p99 ms | %s p99 ms | redis CPU µs/req | %s CPU µs/req | CPU ratio | redis dir MiB | %s dir MiB |\n' \
        "$B_LABEL" "$B_LABEL" "$B_LABEL" "$B_LABEL"
    echo '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
    for aof in yes no; do
        for pl in $PIPELINES; do
            declare -A rps=() p99=() us=() by=()
            for peer in "${PEERS[@]}"; do
                rps[$peer]="$(med "$WORK/writes" 5 1="$peer" 2="$aof" 3="$pl")"
                p99[$peer]="$(med "$WORK/writes" 6 1="$peer" 2="$aof" 3="$pl")"
                us[$peer]="$(med "$WORK/writes" 7 1="$peer" 2="$aof" 3="$pl")"
                by[$peer]="$(med "$WORK/writes" 8 1="$peer" 2="$aof" 3="$pl")"
            done
            r="$(ratio "${rps[meridian]}" "${rps[redis]}")"
            printf '| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$aof" "$pl" "$(fmt0 "${rps[redis]}")" "$(fmt0 "${rps[meridian]}")" "$r" \
                "${p99[redis]:-FAIL}" "${p99[meridian]:-FAIL}" "${us[redis]:--}" "${us[meridian]:--}" \
                "$(ratio "${us[meridian]}" "${us[redis]}")" \
                "$(mib "${by[redis]}")" "$(mib "${by[meridian]}")"
            SUMMARY["w-$aof-$pl,redis"]="$(with_unit "$(fmt0 "${rps[redis]}")" rps)"
            SUMMARY["w-$aof-$pl,meridian"]="$(with_unit "$(fmt0 "${rps[meridian]}")" rps)"
            SUMMARY["w-$aof-$pl,ratio"]="$r"
            unset rps p99 us by
        done
    done
    echo
    echo "ratio = $B_LABEL rps / redis rps (> 1: $B_LABEL is faster; target with appendonly yes: ≥ 1.0)." \
         "CPU µs/req: the server's user + system time over the run (children included), / N;" \
         "ratio < 1: $B_LABEL spends less. dir MiB: what the run left in --dir after a clean stop."
    echo
fi

# ---------------------------------------------------------------- 2. snapshot

# bgsave PEER POLL: on a new connection, sends BGSAVE and polls INFO
# persistence every POLL seconds until it is over (bounded by SNAP_TIMEOUT).
# Sets T_REQ (just before the request), T_DONE (the poll that saw it over),
# SAVE_STATUS (rdb_last_bgsave_status, or refused / timeout / gone / conn) and
# BGSAVE_REPLY. Returns 0 only for a completed save with status ok.
bgsave() {
    local peer="$1" poll="$2" running saves saves0 status seen=0 deadline
    SAVE_STATUS=conn; BGSAVE_REPLY=""
    resp_open "${PORT[$peer]}" || return 1
    if ! resp_call INFO persistence; then resp_close; return 1; fi
    saves0="$(info_field "$RESP" rdb_saves)"; saves0="${saves0:-0}"
    T_REQ="$(now)"
    if ! resp_call BGSAVE; then resp_close; return 1; fi
    BGSAVE_REPLY="$RESP"
    if [[ "$RESP" != "Background saving started" ]]; then
        SAVE_STATUS=refused; resp_close; return 1
    fi
    SAVE_STATUS=timeout
    deadline=$(( SECONDS + SNAP_TIMEOUT ))
    while (( SECONDS < deadline )); do
        kill -0 "${PID[$peer]}" 2>/dev/null || { SAVE_STATUS=gone; break; }
        resp_call INFO persistence || { SAVE_STATUS=conn; break; }
        running="$(info_field "$RESP" rdb_bgsave_in_progress)"
        saves="$(info_field "$RESP" rdb_saves)"
        status="$(info_field "$RESP" rdb_last_bgsave_status)"
        [[ "$running" == 1 ]] && seen=1
        # Redis counts a save when it starts, Meridian when it ends: over means
        # not running, and counted or seen running, or failed.
        if [[ "$running" == 0 ]] && { (( ${saves:-0} > saves0 )) || (( seen )) || [[ "$status" == err ]]; }; then
            T_DONE="$(now)"; SAVE_STATUS="$status"; break
        fi
        sleep "$poll"
    done
    resp_close
    [[ "$SAVE_STATUS" == ok ]]
}

# snapshot_peer PEER: load KEYS keys, ROUNDS timed BGSAVEs, then ROUNDS
# restarts on the file, timed to DBSIZE == KEYS. Appends rows
# "peer round bgsave_ms file_bytes mtime_ms" to $WORK/saves and
# "peer round pong_ms loaded_ms" to $WORK/loads.
snapshot_peer() {
    local peer="$1" dir="$DATA/$1-snap" round ms file bytes mtime_ms t_loaded dbsize deadline
    file="$dir/$(snap_file "$peer")"
    start_server "$peer" snap "$dir" no || return 1
    load_keys "$peer" || { stop_server "$peer"; return 1; }
    for (( round = 1; round <= ROUNDS; round++ )); do
        if ! bgsave "$peer" 0.01; then
            fail "$(label "$peer") BGSAVE round $round: $SAVE_STATUS (reply '$BGSAVE_REPLY';" \
                 "log: $(tail -n 2 "$WORK/$peer-snap.log" | tr '\n' ' '))"
            continue
        fi
        ms="$(ms_since "$T_REQ" "$T_DONE")"
        bytes="$(stat -c %s "$file" 2>/dev/null || true)"
        # File timestamps come from a coarse clock that may lag EPOCHREALTIME by
        # a tick: a small save can look written before it was requested.
        mtime_ms="$(ms_since "$T_REQ" "$(date -r "$file" +%s%6N 2>/dev/null || echo "$T_REQ")")"
        mtime_ms="$(awk -v x="$mtime_ms" 'BEGIN { printf "%.1f\n", (x < 0 ? 0 : x + 0) }')"
        if [[ -z "$bytes" ]]; then
            fail "$(label "$peer") BGSAVE round $round: reported ok but $file is missing"; continue
        fi
        note "$(label "$peer") BGSAVE round $round: ${ms} ms to completion (file written after" \
             "${mtime_ms} ms), $(snap_file "$peer") $bytes bytes"
        printf '%s\t%s\t%s\t%s\t%s\n' "$peer" "$round" "$ms" "$bytes" "$mtime_ms" >>"$WORK/saves"
    done
    stop_server "$peer"
    [[ -s "$file" ]] || { fail "$(label "$peer"): no $(snap_file "$peer") to load"; return 1; }
    for (( round = 1; round <= ROUNDS; round++ )); do
        # A PING every 10 ms from the exec on; Redis answers -LOADING until loaded.
        start_server "$peer" "snap-load$round" "$dir" no "$SNAP_TIMEOUT" 0.01 || continue
        dbsize=""
        if resp_open "${PORT[$peer]}"; then
            deadline=$(( SECONDS + SNAP_TIMEOUT ))
            while resp_call DBSIZE; do
                dbsize="$RESP"
                [[ "$dbsize" == "$KEYS" ]] && break
                (( SECONDS < deadline )) || break
                sleep 0.01
            done
            resp_close
        fi
        t_loaded="$(now)"
        if [[ "$dbsize" != "$KEYS" ]]; then
            fail "$(label "$peer") load round $round: DBSIZE '$dbsize' after PONG, expected $KEYS"
        else
            note "$(label "$peer") load round $round: first PONG after $(ms_since "$T_START" "$T_PONG") ms," \
                 "DBSIZE $KEYS after $(ms_since "$T_START" "$t_loaded") ms"
            printf '%s\t%s\t%s\t%s\n' "$peer" "$round" "$(ms_since "$T_START" "$T_PONG")" \
                "$(ms_since "$T_START" "$t_loaded")" >>"$WORK/loads"
        fi
        stop_server "$peer"
    done
    rm -rf "$dir"
}

if [[ "$SKIP_SNAPSHOT" != 1 ]]; then
    echo "### 2. Snapshot of $KEYS keys: BGSAVE and load (medians over $ROUNDS round(s))"
    echo
    note "redis: \`$(show_argv redis "\$PORT" "\$DIR" no)\`"
    note "$B_LABEL: \`$(show_argv meridian "\$PORT" "\$DIR" no)\`"
    note "load: \`redis-cli --pipe < load.resp\` ($KEYS SETs, key:NNNNNNNNNNNN -> 10-byte value), then DBSIZE checked"
    note "BGSAVE: ROUNDS saves on the same server, each timed from the request to the INFO persistence" \
         "poll (every 10 ms, one connection) that shows rdb_bgsave_in_progress:0; load: a restart on" \
         "the file, timed from the exec to PONG (a new connection every 10 ms), then to DBSIZE == $KEYS"
    make_load_file
    : >"$WORK/saves"; : >"$WORK/loads"
    for peer in "${PEERS[@]}"; do snapshot_peer "$peer" || true; done
    echo
    declare -A sv=() sz=() mt=() pg=() ld=()
    for peer in "${PEERS[@]}"; do
        sv[$peer]="$(fmt1 "$(med "$WORK/saves" 3 1="$peer")")"
        sz[$peer]="$(med "$WORK/saves" 4 1="$peer")"
        mt[$peer]="$(fmt1 "$(med "$WORK/saves" 5 1="$peer")")"
        pg[$peer]="$(fmt1 "$(med "$WORK/loads" 3 1="$peer")")"
        ld[$peer]="$(fmt1 "$(med "$WORK/loads" 4 1="$peer")")"
    done
    printf '| measure | redis | %s | **ratio %s/redis** |\n' "$B_LABEL" "$B_LABEL"
    echo '|---|---:|---:|---:|'
    printf '| BGSAVE, request to completion, ms | %s | %s | **%s** |\n' "${sv[redis]}" \
        "${sv[meridian]}" "$(ratio "${sv[meridian]/FAIL/}" "${sv[redis]/FAIL/}")"
    printf '| BGSAVE, request to the file'"'"'s mtime, ms | %s | %s | %s |\n' "${mt[redis]}" \
        "${mt[meridian]}" "$(ratio "${mt[meridian]/FAIL/}" "${mt[redis]/FAIL/}")"
    printf '| file size, MiB (%s / %s) | %s | %s | %s |\n' "$(snap_file redis)" "$(snap_file meridian)" \
        "$(mib "${sz[redis]}")" "$(mib "${sz[meridian]}")" "$(ratio "${sz[meridian]}" "${sz[redis]}")"
    printf '| restart: exec to first PONG, ms | %s | %s | %s |\n' "${pg[redis]}" \
        "${pg[meridian]}" "$(ratio "${pg[meridian]/FAIL/}" "${pg[redis]/FAIL/}")"
    printf '| restart: exec to DBSIZE = %s, ms | %s | %s | **%s** |\n' "$KEYS" "${ld[redis]}" \
        "${ld[meridian]}" "$(ratio "${ld[meridian]/FAIL/}" "${ld[redis]/FAIL/}")"
    echo
    echo "Times are ms (lower is better; ratio < 1: $B_LABEL is faster; target < 1.0 for BGSAVE and load)," \
         "resolution about 10 ms. Completion is what a client sees: Redis notices its child's exit" \
         "in serverCron (hz 10, so up to 100 ms after the child is done); the mtime row is when the" \
         "file's last byte was written, before its fsync and rename (file timestamps tick every few ms)."
    echo
    SUMMARY["save,redis"]="$(with_unit "${sv[redis]}" ms)"
    SUMMARY["save,meridian"]="$(with_unit "${sv[meridian]}" ms)"
    SUMMARY["save,ratio"]="$(ratio "${sv[meridian]/FAIL/}" "${sv[redis]/FAIL/}")"
    SUMMARY["load,redis"]="$(with_unit "${ld[redis]}" ms)"
    SUMMARY["load,meridian"]="$(with_unit "${ld[meridian]}" ms)"
    SUMMARY["load,ratio"]="$(ratio "${ld[meridian]/FAIL/}" "${ld[redis]/FAIL/}")"
    unset sv sz mt pg ld
fi

# ---------------------------------------------------------------- 3. latency

# snap_loop PEER BENCH_PID: BGSAVE back to back while BENCH_PID runs, each
# waited for (INFO every 50 ms); one line per save, "ms status", to
# $LOOP_OUT. Starts 0.2 s in, once redis-benchmark's clients are connected.
snap_loop() {
    local peer="$1" bpid="$2"
    sleep 0.2
    while kill -0 "$bpid" 2>/dev/null; do
        if bgsave "$peer" 0.05; then
            echo "$(ms_since "$T_REQ" "$T_DONE") ok" >>"$LOOP_OUT"
        else
            echo "- $SAVE_STATUS $BGSAVE_REPLY" >>"$LOOP_OUT"
            [[ "$SAVE_STATUS" == refused ]] || return 0
            sleep 0.05
        fi
    done
}

# idle_loop PEER BENCH_PID: the same INFO poll every 50 ms on one connection,
# without BGSAVE, so that the baseline run carries the same client-side load.
idle_loop() {
    local peer="$1" bpid="$2"
    sleep 0.2
    resp_open "${PORT[$peer]}" || return 0
    while kill -0 "$bpid" 2>/dev/null; do
        resp_call INFO persistence || break
        sleep 0.05
    done
    resp_close
}

# latency_run PEER MODE ROUND: one redis-benchmark run, MODE base (INFO
# polled) or snap (BGSAVE loop). Appends "peer mode round test rps p50 p99
# max" rows to $WORK/lat and "peer mode round saves covered_ms bench_ms
# failures" to $WORK/cover.
latency_run() {
    local peer="$1" mode="$2" round="$3" csv saves covered bad
    csv="$WORK/$peer-lat-$mode-r$round.csv"
    LOOP_OUT="$WORK/$peer-lat-$mode-r$round.saves"; : >"$LOOP_OUT"
    if [[ "$mode" == snap ]]; then BGSAVE_LOOP=snap_loop; else BGSAVE_LOOP=idle_loop; fi
    bench "$peer" "$([[ $mode == snap ]] && echo "with BGSAVE loop" || echo "no snapshot") round $round" \
        "$L_TIMEOUT" "$csv" -t set,get -c 50 -n "$P3_N" -r "$KEYS" -d 10 -P 1 -q --csv
    BGSAVE_LOOP=""
    if (( BENCH_RC != 0 )) || ! parse_csv "$peer	$mode	$round" <"$csv" >>"$WORK/lat"; then
        bench_failed "$peer" "latency $mode round $round" "$csv"; return 1
    fi
    saves="$(awk '$2 == "ok"' "$LOOP_OUT" | wc -l)"
    covered="$(awk '$2 == "ok" { s += $1 } END { printf "%.0f\n", s }' "$LOOP_OUT")"
    bad="$(awk '$2 != "ok"' "$LOOP_OUT" | wc -l)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$mode" "$round" "$saves" "$covered" \
        "$BENCH_MS" "$bad" >>"$WORK/cover"
    if [[ "$mode" == snap ]]; then
        note "$(label "$peer") round $round: $saves BGSAVE(s) completed during the run," \
             "covering ${covered} of ${BENCH_MS} ms"
        if (( bad > 0 )); then
            fail "$(label "$peer") latency round $round: $bad BGSAVE(s) refused or failed" \
                 "($(grep -v ' ok$' "$LOOP_OUT" | head -n 3 | tr '\n' ' '))"
        elif (( saves == 0 )); then
            fail "$(label "$peer") latency round $round: no BGSAVE completed during the run"
        fi
    fi
}

if [[ "$SKIP_LATENCY" != 1 ]]; then
    echo "### 3. Client latency during background snapshots ($KEYS keys; redis-benchmark -t set,get -c 50 -n $P3_N -r $KEYS -d 10 -P 1, medians over $ROUNDS round(s))"
    echo
    note "servers as in part 2 (appendonly no), loaded with the same $KEYS keys"
    note "with snapshot: BGSAVE sent 0.2 s after redis-benchmark starts, then again as soon as" \
         "each finishes, until the run ends; without: the same INFO persistence poll (every 50 ms), no BGSAVE"
    make_load_file
    : >"$WORK/lat"; : >"$WORK/cover"
    up=()
    for peer in "${PEERS[@]}"; do
        if start_server "$peer" lat "$DATA/$peer-lat" no; then
            if load_keys "$peer"; then up+=("$peer"); else stop_server "$peer"; fi
        fi
    done
    for (( round = 1; round <= ROUNDS; round++ )); do
        for mode in base snap; do
            for peer in "${up[@]}"; do
                if ! kill -0 "${PID[$peer]:-0}" 2>/dev/null; then
                    fail "$(label "$peer"): server gone before latency $mode round $round"; continue
                fi
                latency_run "$peer" "$mode" "$round" || true
            done
        done
    done
    for peer in "${up[@]}"; do stop_server "$peer"; rm -rf "$DATA/$peer-lat"; done
    echo
    printf '| server | test | rps without | rps with | p50 ms without | p50 ms with | p99 ms without | p99 ms with | **p99 with/without** | max ms without | max ms with |\n'
    echo '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
    for peer in "${PEERS[@]}"; do
        worst=""
        for test in SET GET; do
            declare -A v=()
            for mode in base snap; do
                for c in 5:rps 6:p50 7:p99 8:max; do
                    v[$mode-${c#*:}]="$(med "$WORK/lat" "${c%%:*}" 1="$peer" 2="$mode" 4="$test")"
                done
            done
            r="$(ratio "${v[snap-p99]}" "${v[base-p99]}")"
            [[ "$r" != - ]] && worst="$(awk -v a="$worst" -v b="$r" 'BEGIN { print (a == "" || b > a) ? b : a }')"
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | **%s** | %s | %s |\n' "$(label "$peer")" "$test" \
                "$(fmt0 "${v[base-rps]}")" "$(fmt0 "${v[snap-rps]}")" "${v[base-p50]:-FAIL}" \
                "${v[snap-p50]:-FAIL}" "${v[base-p99]:-FAIL}" "${v[snap-p99]:-FAIL}" "$r" \
                "${v[base-max]:-FAIL}" "${v[snap-max]:-FAIL}"
            if [[ "$r" == - ]]; then SUMMARY["lat-$test,$peer"]="${v[base-p99]:-FAIL} → ${v[snap-p99]:-FAIL}"
            else SUMMARY["lat-$test,$peer"]="${v[base-p99]} → ${v[snap-p99]} ms ($r×)"; fi
            unset v
        done
        SUMMARY["lat,$peer"]="${worst:--}"
    done
    echo
    echo "with = a BGSAVE was running or about to start for most of the run (coverage above)." \
         "p99 with/without is each server against itself (target for $B_LABEL: ≤ 2.0)."
    echo
fi

# ---------------------------------------------------------------- summary

echo "### Summary"
echo
printf '| measure | redis | %s | ratio %s/redis | target |\n' "$B_LABEL" "$B_LABEL"
echo '|---|---:|---:|---:|---|'
if [[ "$SKIP_WRITE" != 1 ]]; then
    for aof in yes no; do
        for pl in $PIPELINES; do
            if [[ "$aof" == yes ]]; then what="SET rps, appendonly yes everysec"; tgt="≥ 1.0"
            else what="SET rps, appendonly no (reference)"; tgt=""; fi
            printf '| %s, -P %s | %s | %s | %s | %s |\n' "$what" "$pl" "${SUMMARY[w-$aof-$pl,redis]}" \
                "${SUMMARY[w-$aof-$pl,meridian]}" "${SUMMARY[w-$aof-$pl,ratio]}" "$tgt"
        done
    done
fi
if [[ "$SKIP_SNAPSHOT" != 1 ]]; then
    printf '| BGSAVE of %s keys | %s | %s | %s | < 1.0 |\n' "$KEYS" "${SUMMARY[save,redis]}" \
        "${SUMMARY[save,meridian]}" "${SUMMARY[save,ratio]}"
    printf '| load of %s keys at start | %s | %s | %s | < 1.0 |\n' "$KEYS" "${SUMMARY[load,redis]}" \
        "${SUMMARY[load,meridian]}" "${SUMMARY[load,ratio]}"
fi
if [[ "$SKIP_LATENCY" != 1 ]]; then
    for test in SET GET; do
        printf '| %s p99 without → with BGSAVE | %s | %s | | |\n' "$test" \
            "${SUMMARY[lat-$test,redis]}" "${SUMMARY[lat-$test,meridian]}"
    done
    printf '| p99 with/without BGSAVE, worst of SET/GET (each server vs itself) | %s | %s | | %s ≤ 2.0 |\n' \
        "${SUMMARY[lat,redis]}" "${SUMMARY[lat,meridian]}" "$B_LABEL"
fi
echo

busy_line "at end"
[[ "$KEEP_WORK" == 1 ]] && echo "- raw CSVs and server logs: $WORK"
if (( ${#FAILURES[@]} > 0 )); then
    echo
    echo "FAILED steps (${#FAILURES[@]}):"
    printf '  - %s\n' "${FAILURES[@]}"
    exit 1
fi
echo "- all steps completed"
