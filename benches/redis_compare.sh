#!/usr/bin/env bash
# Meridian vs Redis, side by side, in one run:
#   1. throughput and p99 latency with redis-benchmark (TESTS at each of
#      PIPELINES; by default SET/GET at -P 16 and -P 1), and the servers' own
#      CPU time per request,
#   2. memory per key after inserting MEM_KEYS 10-byte keys with 10-byte values,
#   3. the context needed to compare runs (versions, machine, date, command).
#
# Every wait is bounded by a timeout and every server started here is killed on
# exit. Only 127.0.0.1 is used. Exit status: 0 when both peers completed every
# part, 1 when a peer failed somewhere (the rest still runs and prints), 2 on a
# usage or environment error.
#
# Environment (defaults in brackets):
#   N              requests per redis-benchmark test [1000000]
#   TESTS          redis-benchmark -t list, comma-separated [set,get]; e.g. the
#                  data types: lpush,lpop,sadd,hset,spop,zadd,lrange_100. One
#                  redis-benchmark run per (peer, pipeline, round) runs them all,
#                  in redis-benchmark's order (LPOP pops what LPUSH pushed); every
#                  row it prints is reported, including the implicit
#                  "LPUSH (needed to benchmark LRANGE)" of the lrange_* tests.
#                  A server error reply aborts the run (redis-benchmark >= 6.2).
#   PIPELINES      -P values, space- or comma-separated, in run order [16 1]
#   ROUNDS         rounds of (redis, meridian) alternation; medians reported [1]
#   MEM_KEYS       keys inserted for the memory part, at most 1000000 [1000000]
#   SKIP_THROUGHPUT=1 / SKIP_MEMORY=1   skip a part
#   MERIDIAN_BIN   meridian binary [<repo>/target/release/meridian]
#   MERIDIAN_ARGS  extra arguments, appended to `serve --port P --bind 127.0.0.1
#                  --save "" --appendonly no` (the same options Redis gets) [none]
#   PEER_ONLY=1    smoke-test the harness: the "meridian" side is a second
#                  redis-server (MERIDIAN_BIN defaults to redis-server and is
#                  started with Redis's options). Ratios should be ~1.0.
#                  Implied when MERIDIAN_BIN's name starts with redis-server.
#   REDIS_BIN      [redis-server]
#   SERVER_CPU / CLIENT_CPU   CPUs for servers / redis-benchmark [0 / 1]
#   START_TIMEOUT  seconds to wait for a server to answer PING [20]
#   BENCH_TIMEOUT  seconds per redis-benchmark run (all TESTS)
#                  [30 + N/10000 per test, lrange_* counted 6 times; set,get: 30 + N/5000];
#                  a peer that times out is skipped for the rest of part 1
#   LOAD_TIMEOUT   seconds for the whole `redis-cli --pipe` load [180]
#   OUT_DIR        keep raw CSVs and server logs here (default: temp, removed)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly HOST=127.0.0.1

N="${N:-1000000}"
ROUNDS="${ROUNDS:-1}"
MEM_KEYS="${MEM_KEYS:-1000000}"
SKIP_THROUGHPUT="${SKIP_THROUGHPUT:-0}"
SKIP_MEMORY="${SKIP_MEMORY:-0}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
START_TIMEOUT="${START_TIMEOUT:-20}"
TESTS="${TESTS:-set,get}"
PIPELINES="${PIPELINES:-16 1}"
LOAD_TIMEOUT="${LOAD_TIMEOUT:-180}"
MERIDIAN_ARGS="${MERIDIAN_ARGS:-}"
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

is_uint "$N" && (( N > 0 )) || die "N must be a positive integer (got '$N')"
is_uint "$ROUNDS" && (( ROUNDS > 0 )) || die "ROUNDS must be a positive integer (got '$ROUNDS')"
is_uint "$MEM_KEYS" && (( MEM_KEYS > 0 && MEM_KEYS <= 1000000 )) \
    || die "MEM_KEYS must be in 1..1000000 (keys are key:NNNNNN, 10 bytes)"
TESTS="${TESTS,,}"; TESTS="${TESTS// /}"
[[ "$TESTS" =~ ^[a-z0-9_]+(,[a-z0-9_]+)*$ ]] \
    || die "TESTS must be a comma-separated list of redis-benchmark -t names (got '$TESTS')"
read -r -a PL_LIST <<<"${PIPELINES//,/ }"
(( ${#PL_LIST[@]} > 0 )) || die "PIPELINES must list at least one -P value"
for pl in "${PL_LIST[@]}"; do
    is_uint "$pl" && (( pl > 0 )) || die "PIPELINES must be positive integers (got '$PIPELINES')"
done
PIPELINES="${PL_LIST[*]}"
# Per-run timeout: about 10 s per 100k requests of each test, more for the
# LRANGE_* tests (each LRANGE returns up to 600 elements) and their implicit LPUSH.
if [[ -z "${BENCH_TIMEOUT:-}" ]]; then
    IFS=, read -r -a t_list <<<"$TESTS"
    weight=0; lr=0
    for t in "${t_list[@]}"; do
        if [[ "$t" == lrange* ]]; then weight=$(( weight + 6 )); lr=1; else weight=$(( weight + 1 )); fi
    done
    BENCH_TIMEOUT=$(( 30 + N * (weight + lr) / 10000 ))
    unset t_list t weight lr
fi
is_uint "$BENCH_TIMEOUT" && (( BENCH_TIMEOUT > 0 )) \
    || die "BENCH_TIMEOUT must be a positive integer (got '$BENCH_TIMEOUT')"
for tool in redis-benchmark redis-cli taskset timeout awk "$REDIS_BIN"; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH"
done

# ---------------------------------------------------------------- bookkeeping

if [[ -n "${OUT_DIR:-}" ]]; then
    mkdir -p "$OUT_DIR"; WORK="$(cd "$OUT_DIR" && pwd)"; KEEP_WORK=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench.XXXXXX")"; KEEP_WORK=0
fi
declare -A PID=() PORT=()
USED_PORTS=()
FAILURES=()  # one line per failed step, printed at the end

fail() { FAILURES+=("$*"); echo "- **FAILED:** $*"; }

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

BENCH_PID=""  # the running redis-benchmark (its `timeout` wrapper), if any

cleanup() {
    local name
    [[ -n "$BENCH_PID" ]] && kill -TERM "$BENCH_PID" 2>/dev/null
    for name in "${!PID[@]}"; do stop_server "$name"; done
    if [[ "$KEEP_WORK" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nobody listens on, not handed out before in this run, and below the
# kernel's ephemeral range: a port in that range can be the source port of
# some client's connection, which a connect probe does not see but which
# makes the server's bind fail. The server binds it a moment later; the race
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

cli() {  # cli PORT ARGS...  — one bounded redis-cli call, reply on stdout
    local port="$1"; shift
    timeout 10 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null | tr -d '\r'
}

# server_argv PEER PORT: prints the argv (NUL-separated) that starts PEER.
server_argv() {
    local peer="$1" port="$2"
    if [[ "$peer" == redis || "$PEER_ONLY" == 1 ]]; then
        local bin="$REDIS_BIN"; [[ "$peer" == meridian ]] && bin="$MERIDIAN_BIN"
        printf '%s\0' "$bin" --port "$port" --bind "$HOST" --save "" \
            --appendonly no --daemonize no --logfile ""
    else
        # shellcheck disable=SC2086  # MERIDIAN_ARGS is split on purpose
        printf '%s\0' "$MERIDIAN_BIN" serve --port "$port" --bind "$HOST" --save "" \
            --appendonly no $MERIDIAN_ARGS
    fi
}

show_argv() {  # human-readable form of server_argv, quoting empty args
    local peer="$1" port="$2" a out=""
    while IFS= read -r -d '' a; do
        [[ -z "$a" ]] && a='""'
        out+="$a "
    done < <(server_argv "$peer" "$port")
    echo "taskset -c $SERVER_CPU ${out% }"
}

# start_server PEER TAG: starts PEER on a free port, waits for PONG; tries
# another port when the bind lost a race. Sets PID[PEER], PORT[PEER].
# Returns non-zero (after logging) on failure.
start_server() {
    local attempt rc
    for attempt in 1 2 3; do
        rc=0; start_server_once "$1" "$2" "$attempt" || rc=$?
        (( rc == 3 )) || return "$rc"
    done
    fail "$(label "$1") ($2): every port tried was already in use"
    return 1
}

# start_server_once PEER TAG ATTEMPT: 0 = up, 3 = port in use, 1 = failed.
start_server_once() {
    local peer="$1" tag="$2" attempt="$3" port log argv=() deadline reply
    port="$(free_port)" || { fail "$(label "$peer"): no free port found"; return 1; }
    USED_PORTS+=("$port")
    if [[ "$peer" == meridian && "$PEER_ONLY" != 1 && ! -x "$MERIDIAN_BIN" ]]; then
        fail "meridian: binary not found at $MERIDIAN_BIN (cargo build --release -p meridian)"
        return 1
    fi
    mapfile -d '' argv < <(server_argv "$peer" "$port")
    log="$WORK/$peer-$tag.log"
    (( attempt == 1 )) || log="$WORK/$peer-$tag-$attempt.log"
    ( cd "$WORK" && exec taskset -c "$SERVER_CPU" "${argv[@]}" ) >"$log" 2>&1 &
    PID[$peer]=$!
    PORT[$peer]=$port
    deadline=$(( SECONDS + START_TIMEOUT ))
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
        reply="$(timeout 2 redis-cli -h "$HOST" -p "$port" PING 2>/dev/null | tr -d '\r' || true)"
        [[ "$reply" == PONG ]] && return 0
        sleep 0.2
    done
    fail "$(label "$peer") ($tag): no PONG on $HOST:$port within ${START_TIMEOUT}s (log: $log)"
    stop_server "$peer"; return 1
}

vm_rss_bytes() {  # resident set size of PID, in bytes
    awk '/^VmRSS:/ { printf "%.0f\n", $2 * 1024; found = 1 } END { if (!found) exit 1 }' \
        "/proc/$1/status" 2>/dev/null
}

used_memory() {  # INFO memory used_memory, or empty if the server lacks it
    cli "$1" INFO memory | awk -F: '$1 == "used_memory" { print $2 }'
}

median() {  # median of the numbers given as arguments ("" if none)
    printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g \
        | awk '{ v[NR] = $1 } END {
                 if (NR == 0) exit
                 if (NR % 2) print v[(NR + 1) / 2]
                 else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
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
        echo "- WARNING: the machine is busy $1; throughput and p99 are noisy, rerun when idle"
    fi
}

fmt0() {  # fmt0 X -> X rounded to an integer, "FAIL" when missing
    awk -v x="$1" 'BEGIN { if (x == "") print "FAIL"; else printf "%.0f\n", x }'
}

ratio() {  # ratio A B -> A/B with 2 decimals, "-" when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

# ---------------------------------------------------------------- 3. context

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
for v in N TESTS PIPELINES ROUNDS MEM_KEYS SKIP_THROUGHPUT SKIP_MEMORY PEER_ONLY MERIDIAN_BIN \
         MERIDIAN_ARGS REDIS_BIN SERVER_CPU CLIENT_CPU OUT_DIR; do
    val="$(printenv "$v" || true)"
    [[ -n "$val" ]] || continue
    if [[ "$val" =~ ^[A-Za-z0-9_.,/:=+-]+$ ]]; then cmd_env+="$v=$val "   # no quoting needed
    else cmd_env+="$v='${val//\'/\'\\\'\'}' "; fi
done

echo "## Meridian vs Redis — $(date -u '+%F %T UTC')"
echo
echo "- command: \`${cmd_env}benches/redis_compare.sh\`"
echo "- redis: $redis_version"
echo "- meridian: $meridian_version, repo at $git_rev"
echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
busy_line "at start"
echo "- servers on CPU $SERVER_CPU, redis-benchmark on CPU $CLIENT_CPU; N=$N, ROUNDS=$ROUNDS, MEM_KEYS=$MEM_KEYS," \
     "TESTS=$TESTS, PIPELINES=$PIPELINES, BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
if [[ "$PEER_ONLY" == 1 ]]; then
    echo "- PEER_ONLY: the second column is another redis-server, not meridian (harness smoke test)"
fi
echo

# ---------------------------------------------------------------- 1. throughput

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# sleeps PID: voluntary context switches of all the process's threads so far
# (each is the thread going to sleep, e.g. in epoll_wait, with nothing to do).
sleeps() {
    cat /proc/"$1"/task/*/status 2>/dev/null \
        | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'
}

# children_us: sets CHILD_US to the user + system CPU time, in µs, of this
# shell's waited-for children so far (bash `times`, second line). Not in a
# subshell or a pipe: a forked shell's children are not this one's.
children_us() {
    times >"$WORK/times"
    CHILD_US="$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); t += a[1] * 60 + a[2] }
        printf "%.0f\n", t * 1000000 }' "$WORK/times")"
}

# parse_csv PEER PIPELINE ROUND < CSV: redis-benchmark --csv output to rows
# "peer<TAB>pipeline<TAB>round<TAB>test<TAB>rps<TAB>p99<TAB>index" (index = the
# row's position in the CSV, which orders the table). Fields are split with
# quotes honoured, so a test name may hold spaces, parentheses or commas
# ("LRANGE_100 (first 100 elements)"); columns are looked up by header name,
# so a reordered CSV still parses. Exit 1 when no row has a positive rps.
parse_csv() {
    awk -v peer="$1" -v pl="$2" -v round="$3" '
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
        !hdr {   # the header: the first line with a "test" column
            for (i = 1; i <= nf; i++) if (f[i] == "test") hdr = 1
            if (hdr) for (i = 1; i <= nf; i++) col[f[i]] = i
            next
        }
        !(("test" in col) && ("rps" in col) && ("p99_latency_ms" in col)) { next }
        {
            t = f[col["test"]]; gsub(/[\t|]/, " ", t)   # TAB separates fields; | breaks tables
            if (t != "" && f[col["rps"]] + 0 > 0) {
                print peer "\t" pl "\t" round "\t" t "\t" f[col["rps"]] "\t" f[col["p99_latency_ms"]] "\t" ++n
            }
        }
        END { exit n > 0 ? 0 : 1 }'
}

# run_bench PEER PIPELINE ROUND: one redis-benchmark run of all TESTS; rows
# appended to $WORK/rows (see parse_csv); for a completed run, the server's
# CPU ticks, the number of tests run, the server's sleeps and the client's
# CPU µs appended to $WORK/cpu as
# "peer pipeline round ticks tests sleeps client_us".
run_bench() {
    local peer="$1" pl="$2" round="$3" csv err rc=0 prc=0 ticks ntests slept client_us
    csv="$WORK/bench-$peer-P$pl-r$round.csv"; err="${csv%.csv}.err"
    echo "- $(label "$peer") -P $pl round $round: \`taskset -c $CLIENT_CPU redis-benchmark -h $HOST" \
         "-p ${PORT[$peer]} -t $TESTS -c 50 -n $N -P $pl -q --csv\`"
    local cpu0 sleeps0 client0
    cpu0="$(cpu_ticks "${PID[$peer]}")"; sleeps0="$(sleeps "${PID[$peer]}")"
    children_us; client0="$CHILD_US"
    # In the background so that a server that dies mid-run (redis-benchmark
    # then waits forever) is noticed within a fraction of a second.
    timeout "$BENCH_TIMEOUT" taskset -c "$CLIENT_CPU" redis-benchmark -h "$HOST" \
        -p "${PORT[$peer]}" -t "$TESTS" -c 50 -n "$N" -P "$pl" -q --csv \
        >"$csv" 2>"$err" &
    BENCH_PID=$!
    while kill -0 "$BENCH_PID" 2>/dev/null; do
        kill -0 "${PID[$peer]}" 2>/dev/null || { kill -TERM "$BENCH_PID" 2>/dev/null; break; }
        sleep 0.25
    done
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    ticks=$(( $(cpu_ticks "${PID[$peer]}") - cpu0 ))
    slept=$(( $(sleeps "${PID[$peer]}") - sleeps0 ))
    # The watch loop's `sleep`s are children too: a few ms in all.
    children_us; client_us=$(( CHILD_US - client0 ))
    # Rows of a failed run are kept: the tests before the failure completed.
    parse_csv "$peer" "$pl" "$round" <"$csv" >"$csv.rows" || prc=$?
    cat "$csv.rows" >>"$WORK/rows"
    if (( rc == 0 && prc == 0 )); then
        # Requests actually sent: N per row printed (lrange_* adds its LPUSH row).
        ntests="$(wc -l <"$csv.rows")"
        echo "$peer $pl $round $ticks $ntests $slept $client_us" >>"$WORK/cpu"
        return 0
    fi
    if ! kill -0 "${PID[$peer]}" 2>/dev/null; then
        fail "$(label "$peer") -P $pl round $round: the server died during redis-benchmark" \
             "(exit $rc; log: $(tail -n 3 "$WORK/$peer-bench.log" | tr '\n' ' '))"
        HUNG[$peer]=1
    elif (( rc == 124 )); then
        fail "$(label "$peer") -P $pl round $round: redis-benchmark timed out after ${BENCH_TIMEOUT}s;" \
             "no more throughput runs for $(label "$peer")"
        HUNG[$peer]=1
    else
        fail "$(label "$peer") -P $pl round $round: redis-benchmark exit $rc," \
             "$(wc -l <"$csv.rows") result row(s) ($(head -c 300 "$err" | tr '\n' ' '))"
    fi
    return 1
}

if [[ "$SKIP_THROUGHPUT" != 1 ]]; then
    echo "### Throughput and p99 latency (redis-benchmark -t $TESTS -c 50 -n $N, medians over $ROUNDS round(s))"
    echo
    note "redis: \`$(show_argv redis '$PORT')\`"
    note "$B_LABEL: \`$(show_argv meridian '$PORT')\`"
    : >"$WORK/rows"; : >"$WORK/cpu"
    up=()
    declare -A HUNG=()
    for peer in "${PEERS[@]}"; do start_server "$peer" bench && up+=("$peer") || true; done
    for (( round = 1; round <= ROUNDS; round++ )); do
        for pl in $PIPELINES; do
            for peer in "${up[@]}"; do
                [[ -n "${HUNG[$peer]:-}" ]] && continue
                if ! kill -0 "${PID[$peer]:-0}" 2>/dev/null; then
                    fail "$(label "$peer"): server gone before -P $pl round $round; no more throughput runs"
                    HUNG[$peer]=1; continue
                fi
                run_bench "$peer" "$pl" "$round" || true
            done
        done
    done
    for peer in "${up[@]}"; do stop_server "$peer"; done
    echo
    printf '| test | pipeline | redis rps | %s rps | ratio %s/redis | redis p99 ms | %s p99 ms | p99 ratio |\n' \
        "$B_LABEL" "$B_LABEL" "$B_LABEL"
    echo '|---|---|---:|---:|---:|---:|---:|---:|'
    # Table rows: every test name any run printed, in redis-benchmark's order
    # (its position in the CSV); the requested names when no run printed any.
    mapfile -t TEST_ROWS < <(awk -F'\t' '!($4 in m) || $7 + 0 < m[$4] { m[$4] = $7 + 0 }
        END { for (t in m) print m[t] "\t" t }' "$WORK/rows" | sort -t "$(printf '\t')" -k1,1n -s | cut -f2-)
    if (( ${#TEST_ROWS[@]} == 0 )); then
        IFS=, read -r -a TEST_ROWS <<<"${TESTS^^}"
    fi
    for pl in $PIPELINES; do
        for test in "${TEST_ROWS[@]}"; do
            declare -A rps=() p99=()
            for peer in "${PEERS[@]}"; do
                # shellcheck disable=SC2046  # one number per line, split on purpose
                rps[$peer]="$(median $(awk -F'\t' -v p="$peer" -v l="$pl" -v t="$test" \
                    '$1 == p && $2 == l && $4 == t { print $5 }' "$WORK/rows"))"
                # shellcheck disable=SC2046
                p99[$peer]="$(median $(awk -F'\t' -v p="$peer" -v l="$pl" -v t="$test" \
                    '$1 == p && $2 == l && $4 == t { print $6 }' "$WORK/rows"))"
            done
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$test" "$pl" \
                "$(fmt0 "${rps[redis]}")" "$(fmt0 "${rps[meridian]}")" \
                "$(ratio "${rps[meridian]}" "${rps[redis]}")" \
                "${p99[redis]:-FAIL}" "${p99[meridian]:-FAIL}" \
                "$(ratio "${p99[meridian]}" "${p99[redis]}")"
            unset rps p99
        done
    done
    echo
    echo "rps ratio > 1: $B_LABEL is faster; p99 ratio < 1: $B_LABEL has the lower tail."
    echo
    # When redis-benchmark's one thread saturates its core, rps measures the
    # client as much as the server; the server's own CPU per request does not.
    tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
    # cpu_median PEER PIPELINE FORMAT EXPR: the median over PEER's completed
    # runs at PIPELINE of the awk EXPR over a $WORK/cpu row ($4 server ticks,
    # $5 tests, $6 server sleeps, $7 client µs; n = N, t = µs per tick).
    cpu_median() {
        # shellcheck disable=SC2046  # one number per line, split on purpose
        median $(awk -v p="$1" -v l="$2" -v n="$N" -v t="$tick_us" \
            '$1 == p && $2 == l && $5 > 0 && NF >= 7 { printf "'"$3"'\n", '"$4"' }' "$WORK/cpu")
    }
    # A run's CPU time covers all its tests: divide by the requests it sent,
    # N per test row it printed. Only completed runs are counted.
    cmds=""
    for (( i = 0; i < ${#TEST_ROWS[@]}; i++ )); do
        (( i == 0 )) || { (( i == ${#TEST_ROWS[@]} - 1 )) && cmds+=" and " || cmds+=", "; }
        cmds+="${TEST_ROWS[$i]%% *}"
    done
    echo "Server CPU per request (user + system, $cmds runs together, divided by N × ${#TEST_ROWS[@]} requests, median over rounds):"
    echo
    printf '| pipeline | redis µs/req | %s µs/req | ratio %s/redis |\n' "$B_LABEL" "$B_LABEL"
    echo '|---|---:|---:|---:|'
    for pl in $PIPELINES; do
        declare -A us=()
        for peer in "${PEERS[@]}"; do
            us[$peer]="$(cpu_median "$peer" "$pl" %.3f '$4 * t / ($5 * n)')"
        done
        printf '| %s | %s | %s | %s |\n' "$pl" "${us[redis]:--}" "${us[meridian]:--}" \
            "$(ratio "${us[meridian]}" "${us[redis]}")"
        unset us
    done
    echo
    # What a sleeping server costs the client: its next write must wake the
    # server's thread, a cross-CPU wake-up paid on the client's CPU.
    echo "Client CPU per request (redis-benchmark's user + system over the same runs) and server sleeps (voluntary context switches of the server's threads) per 1,000 requests, medians over rounds:"
    echo
    printf '| pipeline | redis: client µs/req | %s: client µs/req | ratio %s/redis | redis: server sleeps/1k req | %s: server sleeps/1k req |\n' \
        "$B_LABEL" "$B_LABEL" "$B_LABEL"
    echo '|---|---:|---:|---:|---:|---:|'
    for pl in $PIPELINES; do
        declare -A cus=() slp=()
        for peer in "${PEERS[@]}"; do
            cus[$peer]="$(cpu_median "$peer" "$pl" %.3f '$7 / ($5 * n)')"
            slp[$peer]="$(cpu_median "$peer" "$pl" %.2f '$6 * 1000 / ($5 * n)')"
        done
        printf '| %s | %s | %s | %s | %s | %s |\n' "$pl" "${cus[redis]:--}" "${cus[meridian]:--}" \
            "$(ratio "${cus[meridian]}" "${cus[redis]}")" "${slp[redis]:--}" "${slp[meridian]:--}"
        unset cus slp
    done
    echo
fi

# ---------------------------------------------------------------- 2. memory

# The load file: MEM_KEYS SETs, key "key:NNNNNN" and value "val:NNNNNN"
# (10 bytes each; the "val:" prefix keeps Redis from int-encoding the value).
make_load_file() {
    awk -v n="$MEM_KEYS" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$10\r\nkey:%06d\r\n$10\r\nval:%06d\r\n", i, i }' \
        >"$WORK/load.resp"
}

# measure_memory PEER: fresh server, RSS and used_memory before and after the
# load. Sets MEM_<field>[PEER].
declare -A MEM_RSS0=() MEM_RSS1=() MEM_UM0=() MEM_UM1=() MEM_DBSIZE=()
measure_memory() {
    local peer="$1" port pid rc=0 out
    start_server "$peer" mem || return 1
    port="${PORT[$peer]}"; pid="${PID[$peer]}"
    MEM_RSS0[$peer]="$(vm_rss_bytes "$pid")" || true
    MEM_UM0[$peer]="$(used_memory "$port" || true)"
    out="$WORK/load-$peer.out"
    timeout "$LOAD_TIMEOUT" redis-cli -h "$HOST" -p "$port" --pipe --pipe-timeout 60 \
        <"$WORK/load.resp" >"$out" 2>&1 || rc=$?
    if (( rc != 0 )); then
        fail "$(label "$peer"): redis-cli --pipe exit $rc ($(tail -n 2 "$out" | tr '\r\n' '  '))" \
             "(124 = timeout; --pipe ends with an ECHO and waits for its reply)"
    fi
    MEM_DBSIZE[$peer]="$(cli "$port" DBSIZE || true)"
    if [[ "${MEM_DBSIZE[$peer]}" != "$MEM_KEYS" ]]; then
        fail "$(label "$peer"): DBSIZE is '${MEM_DBSIZE[$peer]}' after the load, expected $MEM_KEYS"
    fi
    MEM_RSS1[$peer]="$(vm_rss_bytes "$pid")" || true
    MEM_UM1[$peer]="$(used_memory "$port" || true)"
    kill -0 "$pid" 2>/dev/null || fail "$(label "$peer"): server died during the memory test"
    stop_server "$peer"
    (( rc == 0 )) && [[ "${MEM_DBSIZE[$peer]}" == "$MEM_KEYS" ]]
}

per_key() {  # per_key BEFORE AFTER -> bytes per key with 1 decimal, "-" if unknown
    awk -v a="$1" -v b="$2" -v n="$MEM_KEYS" 'BEGIN {
        if (a == "" || b == "") print "-"; else printf "%.1f\n", (b - a) / n }'
}

mb() { awk -v x="$1" 'BEGIN { if (x == "") print "-"; else printf "%.1f\n", x / 1048576 }'; }

if [[ "$SKIP_MEMORY" != 1 ]]; then
    echo "### Memory: $MEM_KEYS keys, 10-byte keys and 10-byte values, fresh servers"
    echo
    note "load: \`redis-cli -h $HOST -p \$PORT --pipe < load.resp\` ($MEM_KEYS SETs of key:NNNNNN -> val:NNNNNN)"
    make_load_file
    for peer in "${PEERS[@]}"; do measure_memory "$peer" || true; done
    echo
    printf '| measure | redis | %s | ratio %s/redis |\n' "$B_LABEL" "$B_LABEL"
    echo '|---|---:|---:|---:|'
    printf '| DBSIZE after load | %s | %s | |\n' "${MEM_DBSIZE[redis]:--}" "${MEM_DBSIZE[meridian]:--}"
    printf '| RSS before, MiB | %s | %s | |\n' "$(mb "${MEM_RSS0[redis]:-}")" "$(mb "${MEM_RSS0[meridian]:-}")"
    printf '| RSS after, MiB | %s | %s | |\n' "$(mb "${MEM_RSS1[redis]:-}")" "$(mb "${MEM_RSS1[meridian]:-}")"
    declare -A bpk=() ubpk=()
    for peer in "${PEERS[@]}"; do
        bpk[$peer]="$(per_key "${MEM_RSS0[$peer]:-}" "${MEM_RSS1[$peer]:-}")"
        ubpk[$peer]="$(per_key "${MEM_UM0[$peer]:-}" "${MEM_UM1[$peer]:-}")"
        # A short load makes the numbers meaningless: drop them rather than print them.
        [[ "${MEM_DBSIZE[$peer]:-}" == "$MEM_KEYS" ]] || { bpk[$peer]="-"; ubpk[$peer]="-"; }
    done
    r() { [[ "$1" == - || "$2" == - ]] && echo - || ratio "$1" "$2"; }
    printf '| **bytes/key (RSS)** | %s | %s | %s |\n' "${bpk[redis]}" "${bpk[meridian]}" \
        "$(r "${bpk[meridian]}" "${bpk[redis]}")"
    printf '| bytes/key (used_memory) | %s | %s | %s |\n' "${ubpk[redis]}" "${ubpk[meridian]}" \
        "$(r "${ubpk[meridian]}" "${ubpk[redis]}")"
    echo
    echo "bytes/key = (after - before) / $MEM_KEYS; ratio < 1: $B_LABEL uses less memory."
    echo
fi

# ---------------------------------------------------------------- summary

busy_line "at end"
[[ "$KEEP_WORK" == 1 ]] && echo "- raw CSVs and server logs: $WORK"
if (( ${#FAILURES[@]} > 0 )); then
    echo
    echo "FAILED steps (${#FAILURES[@]}):"
    printf '  - %s\n' "${FAILURES[@]}"
    exit 1
fi
echo "- all steps completed"
