#!/usr/bin/env bash
# HTTPS comparison: Spindle's http-server over TLS (--tls-cert/--tls-key) beside HTTPS
# peers written for this folder. Never run by CI.
#
#   Benchmarks/tls/run.sh [OUTDIR]                   (default /tmp/spindle-tls-bench)
#
# A throw-away CA and an ECDSA P-256 leaf for `localhost` and 127.0.0.1 are made with the
# openssl command at every run, in OUTDIR/certs (nothing of them is in the source tree).
# Each server runs pinned to $TLS_SERVER_CPU with one thread of work (Spindle's --workers
# 1, Go's GOMAXPROCS=1, hyper's current-thread runtime); the client is pinned to
# $TLS_CLIENT_CPU. For each server, in every round, two parts, each on a fresh server:
#
# Part A, "handshakes per second": go-handshake -c CONNS (64) for SECS after a WARMUP s
# run of the same: CONNS goroutines each loop over new connections, a full TLS 1.3
# handshake every time (no session cache), the chain verified against the CA for
# "localhost", one `GET /` with `Connection: close`, read to EOF. Recorded: handshakes/s,
# p50/p99 of a connection's time (dial to EOF), failed connections, the server's CPU per
# handshake and as % of one core, the client's CPU as % of one core.
#
# Part B, "HTTPS keep-alive requests per second": `wrk -t1 -cC -dSECS --latency
# https://localhost:PORT/` (C = 100; localhost, so that wrk's SNI is a host name, which
# rustls insists on) after WARMUP s of the same. Recorded: requests/s,
# wrk's p50/p99, errors (socket errors plus non-2xx/3xx answers), the server's CPU per
# request and as % of one core, wrk's CPU as % of one core.
#
# Server CPU is utime + stime from /proc/PID/stat just before and just after the measured
# run; client CPU is bash's `times` around the client. RUNS rounds, the server order
# reversed every other round; medians (errors summed). What each server negotiates is
# probed once (openssl s_client, as wrk's OpenSSL sees it; go-handshake's own first
# connection, as Go's client sees it) and tabled.
#
# Environment:
#   TLS_RUNS (3), TLS_SECONDS (10), TLS_WARMUP (1), TLS_HANDSHAKE_CONNS (64),
#   TLS_WRK_CONNS (100), TLS_SERVER_CPU (1), TLS_CLIENT_CPU (0)
#   TLS_PARTS       "a b" (default), "a" or "b"
#   TLS_SERVERS     a subset, space-separated (default: spindle-async spindle-fiber go hyper)
#   TLS_SMOKE=1     one round, 2 s runs: checks the script end to end; the tables say it
#                   is not for publishing
#   TLS_NO_INSTALL=1  install nothing (by default, what is missing is installed with
#                   apt-get: golang-go wrk openssl librust-hyper-dev librust-tokio-dev
#                   librust-tokio-rustls-dev librust-rustls-pemfile-dev [cargo])
#   SPINDLE_SCRATCH the --scratch-path of Spindle's build (default $root/.build)
#   SPINDLE_BUILD=0 do not build Spindle; use $SPINDLE_SCRATCH/release/http-server as it is
# A server that cannot be installed, built or started is skipped with its reason, never
# the whole run. Progress and raw lines go to stderr; the Markdown tables to stdout and to
# OUTDIR/tables-STAMP.md; raw lines to OUTDIR/results-STAMP-{handshakes,requests}.txt;
# each process's output to OUTDIR/logs/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-/tmp/spindle-tls-bench}"
smoke="${TLS_SMOKE:-0}"
runs="${TLS_RUNS:-3}"
secs="${TLS_SECONDS:-10}"
warmup="${TLS_WARMUP:-1}"
if [ "$smoke" = 1 ]; then
    runs="${TLS_RUNS:-1}"; secs="${TLS_SECONDS:-2}"
fi
hs_conns="${TLS_HANDSHAKE_CONNS:-64}"
wrk_conns="${TLS_WRK_CONNS:-100}"
parts="${TLS_PARTS:-a b}"
server_cpu="${TLS_SERVER_CPU:-1}"
client_cpu="${TLS_CLIENT_CPU:-0}"
scratch="${SPINDLE_SCRATCH:-$root/.build}"
all_servers=(spindle-async spindle-fiber go hyper)
read -r -a servers <<<"${TLS_SERVERS:-${all_servers[*]}}"

log() { echo "$@" >&2; }
die() { log "run.sh: $*"; exit 2; }
posint() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
posint "$runs" && posint "$secs" && posint "$hs_conns" && posint "$wrk_conns" \
    || die "TLS_RUNS, TLS_SECONDS, TLS_HANDSHAKE_CONNS and TLS_WRK_CONNS must be positive integers"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "TLS_WARMUP must be a whole number of seconds"
for s in "${servers[@]}"; do [[ " ${all_servers[*]} " == *" $s "* ]] || die "unknown server '$s' in TLS_SERVERS (known: ${all_servers[*]})"; done
[ ${#servers[@]} -gt 0 ] || die "TLS_SERVERS is empty"
for p in $parts; do [ "$p" = a ] || [ "$p" = b ] || die "unknown part '$p' in TLS_PARTS (known: a b)"; done
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin servers and clients"
taskset -c "$server_cpu" true 2>/dev/null && taskset -c "$client_cpu" true 2>/dev/null \
    || die "cannot pin to CPUs $server_cpu and $client_cpu (TLS_SERVER_CPU / TLS_CLIENT_CPU)"
[ "$server_cpu" != "$client_cpu" ] || die "the server and the client must be pinned to different CPUs"
[ "$smoke" = 1 ] && log "TLS_SMOKE=1: a quick check ($runs round(s), ${secs} s runs); the figures are not for publishing."

mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"
ulimit -n "$(ulimit -Hn)"
clk_tck="$(getconf CLK_TCK)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
have() { command -v "$1" >/dev/null 2>&1; }

# ---- install what is missing --------------------------------------------------------------

# cargo_offline_home DIR: a CARGO_HOME whose cargo builds from Debian's crate directory
# ($debian_crates, the librust-*-dev packages) with no network.
. "$root/Benchmarks/cargo-offline.sh"
have_crate() { compgen -G "$debian_crates/$1-$2*" >/dev/null; }   # NAME VERSION-PREFIX
rust_crates=(hyper:0.14 tokio:1. tokio-rustls:0.23 rustls:0.20 rustls-pemfile:1.)
missing_crates() { local c; for c in "${rust_crates[@]}"; do have_crate "${c%%:*}" "${c#*:}" || echo "${c%%:*} ${c#*:}"; done; }
if [ "${TLS_NO_INSTALL:-0}" != 1 ]; then
    pkgs=()
    have go || pkgs+=(golang-go)
    have wrk || pkgs+=(wrk)
    have openssl || pkgs+=(openssl)
    have_crate hyper 0.14 || pkgs+=(librust-hyper-dev)
    have_crate tokio 1. || pkgs+=(librust-tokio-dev)
    { have_crate tokio-rustls 0.23 && have_crate rustls 0.20; } || pkgs+=(librust-tokio-rustls-dev)
    have_crate rustls-pemfile 1. || pkgs+=(librust-rustls-pemfile-dev)
    have cargo || pkgs+=(cargo)
    if [ ${#pkgs[@]} -gt 0 ]; then
        log "installing from Debian: ${pkgs[*]}…"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"; } \
            >"$out/logs/apt-$stamp.log" 2>&1 || log "apt-get failed (see $out/logs/apt-$stamp.log); what it should have brought will be skipped"
    fi
fi
have openssl || die "the openssl command is needed to make the certificates (Debian's openssl)"

# ---- a throw-away CA and a leaf for localhost ---------------------------------------------

certs="$out/certs"
rm -rf "$certs"; mkdir -p "$certs"
ca="$certs/ca.pem"; cert="$certs/leaf.pem"; key="$certs/leaf.key"
cat >"$certs/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
if ! (cd "$certs" \
    && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key \
    && openssl req -x509 -new -config openssl.cnf -extensions ca -key ca.key -sha256 -days 2 \
        -subj "/CN=Spindle TLS benchmark throw-away CA $stamp" -out ca.pem \
    && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key \
    && openssl req -new -config openssl.cnf -key leaf.key -subj "/CN=localhost" -out leaf.csr \
    && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 2 -sha256 -extfile openssl.cnf -extensions leaf -out leaf.pem \
    && openssl verify -CAfile ca.pem leaf.pem) >"$out/logs/certs-$stamp.log" 2>&1; then
    die "making the certificates failed (see $out/logs/certs-$stamp.log)"
fi
rm -f "$certs/ca.key" "$certs/leaf.csr"   # the CA signs nothing else
log "certificates: $ca (CA), $cert + $key (ECDSA P-256 leaf for localhost, 127.0.0.1)"

# ---- build --------------------------------------------------------------------------------

# skipped[NAME] = why server NAME is not measured.
declare -A skipped=()
skip() { skipped[$1]="$2"; log "skipping $1: $2"; }
want() { [[ " ${servers[*]} " == *" $1 "* ]]; }

go_ok=0
if ! have go; then
    skip go "no go command (golang-go)"
else
    log "building the Go server and go-handshake…"
    if (cd "$here" && GOCACHE="$out/gocache" GO111MODULE=off nice -n 19 go build -o "$out/go-server" go-server/main.go \
        && GOCACHE="$out/gocache" GO111MODULE=off nice -n 19 go build -o "$out/go-handshake" go-handshake/main.go) >"$out/logs/build-go.log" 2>&1; then
        go_ok=1
    else
        skip go "go build failed (see $out/logs/build-go.log)"
    fi
fi

if ! want hyper; then :
elif ! have cargo; then skip hyper "no cargo command"
elif [ -n "$(missing_crates)" ]; then
    skip hyper "not in $debian_crates: $(missing_crates | tr '\n' ',' | sed 's/,$//; s/,/, /g') (librust-hyper-dev, librust-tokio-dev, librust-tokio-rustls-dev, librust-rustls-pemfile-dev)"
else
    log "building the hyper server (offline, Debian's crates)…"
    cargo_offline_home "$out/cargo-home"
    # Built from a copy so that Cargo.lock lands in OUTDIR, not in the source folder.
    mkdir -p "$out/hyper-src"
    rm -rf "$out/hyper-src/src"
    cp -p "$here/hyper-server/Cargo.toml" "$out/hyper-src/"
    cp -pr "$here/hyper-server/src" "$out/hyper-src/"
    if (cd "$out/hyper-src" && CARGO_HOME="$out/cargo-home" CARGO_TARGET_DIR="$out/cargo-target" nice -n 19 cargo build --offline --release -q) >"$out/logs/build-hyper.log" 2>&1; then
        cp "$out/cargo-target/release/hyper-tls-server" "$out/hyper-tls-server"
        lockver() { sed -n "/^name = \"$1\"\$/{n;s/^version = \"\(.*\)\"\$/\1/p}" "$out/hyper-src/Cargo.lock"; }
        log "  hyper $(lockver hyper), tokio-rustls $(lockver tokio-rustls), rustls $(lockver rustls), ring $(lockver ring)"
    else
        skip hyper "cargo build --offline failed (see $out/logs/build-hyper.log)"
    fi
fi

spindle_bin_dir="$scratch/release"
if ! want spindle-async && ! want spindle-fiber; then :
elif [ "${SPINDLE_BUILD:-1}" = 0 ]; then
    log "SPINDLE_BUILD=0: using $spindle_bin_dir/http-server as it is"
elif ! have swift; then
    log "no swift command: using $spindle_bin_dir/http-server, if any"
else
    log "building Spindle's http-server (scratch path $scratch)…"
    spindle_build=(swift build -c release --package-path "$root" --scratch-path "$scratch")
    # A failed build skips its entries rather than measure an older binary left in place.
    if ! "${spindle_build[@]}" --product http-server >"$out/logs/build-spindle-http-server.log" 2>&1; then
        for mode in async fiber; do skip "spindle-$mode" "building Spindle's http-server failed (see $out/logs/build-spindle-http-server.log)"; done
    fi
    spindle_bin_dir="$("${spindle_build[@]}" --show-bin-path 2>/dev/null || echo "$scratch/release")"
fi
for mode in async fiber; do
    want "spindle-$mode" && [ -z "${skipped[spindle-$mode]:-}" ] || continue
    if [ ! -x "$spindle_bin_dir/http-server" ]; then
        skip "spindle-$mode" "no $spindle_bin_dir/http-server"
    elif ! grep -q -a -e '--tls-cert' "$spindle_bin_dir/http-server"; then
        skip "spindle-$mode" "$spindle_bin_dir/http-server has no --tls-cert flag (built before TLS support?)"
    fi
done

if [ "$go_ok" = 0 ]; then
    case " $parts " in *" a "*) log "part A needs go-handshake: it is skipped"; parts="${parts//a/}" ;; esac
fi
have wrk || { case " $parts " in *" b "*) log "part B needs wrk (Debian's wrk): it is skipped"; parts="${parts//b/}" ;; esac; }
if [[ " $parts " == *" b "* ]] && ! ldd "$(command -v wrk)" 2>/dev/null | grep libssl >/dev/null; then
    log "warning: this wrk does not seem to link OpenSSL; part B's https:// runs may fail"
fi

# ---- processes ----------------------------------------------------------------------------

port=8500
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# State letter of a process (R, S, Z…), empty once it is gone.
proc_state() { sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true; }
alive() { local s; s="$(proc_state "$1")"; [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted
# after the parenthesised command name, which may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }

start_server() { # NAME LOGFILE → $server_pid listening on 127.0.0.1:$port, or status 1
    port=$((port + 1))
    while port_busy "$port"; do port=$((port + 1)); done
    local cmd
    case "$1" in
        spindle-async) cmd=("$spindle_bin_dir/http-server" --port "$port" --mode async --workers 1 --tls-cert "$cert" --tls-key "$key") ;;
        spindle-fiber) cmd=("$spindle_bin_dir/http-server" --port "$port" --mode fiber --workers 1 --tls-cert "$cert" --tls-key "$key") ;;
        go) cmd=(env GOMAXPROCS=1 "$out/go-server" --port "$port" --cert "$cert" --key "$key") ;;
        hyper) cmd=("$out/hyper-tls-server" --port "$port" --cert "$cert" --key "$key") ;;
    esac
    # taskset and env exec the server, so $! is the server's own pid.
    taskset -c "$server_cpu" "${cmd[@]}" >"$2" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        port_busy "$port" && return 0
        alive "$server_pid" || break
        sleep 0.05
    done
    return 1
}

stop_server() { # SIGTERM, then SIGKILL after 5 s; reaps it
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$server_pid" || break; sleep 0.05; done
    alive "$server_pid" && kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
server_pid=""
trap '[ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null; true' EXIT

# How busy the machine is with other work, over one second now: % of all CPUs not idle.
cpu_busy() {
    local a b
    a="$(head -n 1 /proc/stat)"; sleep 1; b="$(head -n 1 /proc/stat)"
    printf '%s\n%s\n' "$a" "$b" | awk '{ t = 0; for (i = 2; i <= NF; i++) t += $i; idle = $5 + $6 }
        NR == 1 { t0 = t; i0 = idle } NR == 2 { printf "%.0f", 100 * (1 - (idle - i0) / (t - t0)) }'
}
# 1m2.345s → 62345 (ms)
ms_of() { echo "$1" | awk -F'[ms]' '{ printf "%.0f", ($1 * 60 + $2) * 1000 }'; }
# wrk latency "810.00us" / "3.26ms" / "1.45s" / "2.00m" → ms
wrk_ms() { echo "$1" | awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v = v; else if ($1 ~ /m$/) v *= 60000; else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'; }

# run_client BASE CMD… : runs CMD pinned to the client CPU (stdout BASE.out, stderr
# BASE.err) and sets $client_rc and $client_cpu_ms (its user + system time: `times` in
# this subshell reports its children's, and timeout waits for the client).
run_client() {
    local base=$1; shift
    local t ut st w0
    w0="$(date +%s%N)"
    t="$( { taskset -c "$client_cpu" timeout -k 5 $((secs + 60)) "$@" >"$base.out" 2>"$base.err"; echo "rc=$?"; times; } )"
    client_rc="$(echo "$t" | sed -n 's/^rc=//p')"
    read -r ut st < <(echo "$t" | tail -n 1)
    client_cpu_ms=$(( $(ms_of "$ut") + $(ms_of "$st") ))
    client_wall_ms=$(( ($(date +%s%N) - w0) / 1000000 ))
}
# cpu_fields C0 C1 COUNT → " srv_cpu_us_per_op=… srv_cpu_pct=… cli_cpu_pct=…" (what it
# can). The percentages are over the client's wall time (its start-up and exit included,
# as the server's readings just before and after it bracket them), not the nominal SECS.
cpu_fields() {
    local c0=$1 c1=$2 n=$3 f=""
    if [ -n "$c0" ] && [ -n "$c1" ] && [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ]; then
        f="$f srv_cpu_us_per_op=$(awk -v d=$((c1 - c0)) -v t="$clk_tck" -v n="$n" 'BEGIN { printf "%.2f", d / t * 1e6 / n }')"
    fi
    if [ -n "$c0" ] && [ -n "$c1" ]; then
        f="$f srv_cpu_pct=$(awk -v d=$((c1 - c0)) -v t="$clk_tck" -v w="$client_wall_ms" 'BEGIN { printf "%.0f", 100 * d / t / (w / 1000) }')"
    fi
    f="$f cli_cpu_pct=$(awk -v m="$client_cpu_ms" -v w="$client_wall_ms" 'BEGIN { printf "%.0f", 100 * m / w }') wall_ms=$client_wall_ms"
    echo "$f"
}

# What a server negotiates, once per server: OpenSSL's client (as wrk's) and Go's (the first
# completed connection of part A's go-handshake, from its stderr).
negotiated="$out/negotiated-$stamp.txt"
: >"$negotiated"
declare -A probed=()
probe_server() { # NAME BASE
    [ -z "${probed[$1]:-}" ] || return 0
    probed[$1]=1
    local o
    o="$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$ca" \
        -verify_hostname localhost -verify_return_error -alpn http/1.1 </dev/null 2>&1)" || true
    echo "$o" >"$2.s_client.txt"
    local proto cipher group alpn verify
    proto="$(echo "$o" | sed -n 's/^ *Protocol *: *//p; s/^New, \(TLSv[0-9.]*\), Cipher is .*/\1/p' | awk 'NR == 1')"
    cipher="$(echo "$o" | sed -n 's/^New, TLSv[0-9.]*, Cipher is //p' | awk 'NR == 1')"
    group="$(echo "$o" | sed -n 's/^\(Server \|Peer \)Temp Key: *//p' | awk 'NR == 1' | cut -d, -f1)"
    alpn="$(echo "$o" | sed -n 's/^ALPN protocol: *//p' | awk 'NR == 1')"
    verify="$(echo "$o" | sed -n 's/^ *Verify return code: *\([0-9]*\).*/\1/p' | tail -n 1)"
    [ -n "$alpn" ] || alpn=none
    [ "$verify" = 0 ] && verify=ok || verify="failed(${verify:-no-handshake})"
    echo "server=$1 client=openssl proto=${proto:-NA} cipher=${cipher:-NA} group=${group:-NA} alpn=$alpn verify=$verify" | tee -a "$negotiated" >&2
}

results_a="$out/results-$stamp-handshakes.txt"
results_b="$out/results-$stamp-requests.txt"
: >"$results_a"; : >"$results_b"

measure_handshakes() { # round server
    local round=$1 server=$2 status=ok tag="run=$1 server=$2"
    local base="$out/logs/$stamp-a-$round-$server"
    if ! start_server "$server" "$base.server.log"; then
        log "  $server did not start; see $base.server.log"
        stop_server
        echo "$tag status=nostart" | tee -a "$results_a" >&2
        return
    fi
    probe_server "$server" "$base"
    local hs=("$out/go-handshake" -addr "127.0.0.1:$port" -c "$hs_conns" -ca "$ca")
    if [ "$warmup" -gt 0 ]; then
        taskset -c "$client_cpu" timeout -k 5 $((warmup + 30)) "${hs[@]}" -d "$warmup" >"$base.warmup.txt" 2>&1 || true
    fi
    local c0 c1
    c0="$(cpu_ticks "$server_pid")"
    run_client "$base.client" "${hs[@]}" -d "$secs"
    c1="$(cpu_ticks "$server_pid")"
    [ "$client_rc" = 0 ] || status="client-exit-$client_rc"
    alive "$server_pid" || status=died
    stop_server
    local line n
    line="$(grep '^RESULT ' "$base.client.out" | tail -n 1 | sed 's/^RESULT //')" || true
    [ -n "$line" ] || { [ "$status" = ok ] && status=no-result; }
    n="$(echo "$line" | sed -n 's/.*handshakes=\([0-9]*\).*/\1/p')"
    if [ "$n" = 0 ]; then line="${line/hps=0.0/hps=NA}"; [ "$status" = ok ] && status=no-handshakes; fi
    if ! grep -q "^server=$server client=go " "$negotiated"; then
        sed -n 's/^go-handshake: negotiated \([^ ]*\) \([^ ]*\) alpn="\([^"]*\)" resumed=\([a-z]*\)$/proto=\1 cipher=\2 alpn=\3 resumed=\4/p' "$base.client.err" \
            | awk 'NR == 1' | sed "s/^/server=$server client=go /" | tee -a "$negotiated" >&2
    fi
    echo "$tag status=$status $line$(cpu_fields "$c0" "$c1" "$n")" | tee -a "$results_a" >&2
}

measure_requests() { # round server
    local round=$1 server=$2 status=ok tag="run=$1 server=$2 conns=$wrk_conns"
    local base="$out/logs/$stamp-b-$round-$server"
    if ! start_server "$server" "$base.server.log"; then
        log "  $server did not start; see $base.server.log"
        stop_server
        echo "$tag status=nostart" | tee -a "$results_b" >&2
        return
    fi
    probe_server "$server" "$base"
    # localhost, not 127.0.0.1: wrk sends the URL's host as SNI, and rustls 0.20 refuses an
    # IP address there (RFC 6066 allows only host names) with a decode_error alert. wrk
    # drops the addresses of localhost it cannot connect to, so an ::1 entry is harmless.
    local url="https://localhost:$port/"
    if [ "$warmup" -gt 0 ]; then
        taskset -c "$client_cpu" timeout -k 5 $((warmup + 30)) wrk -t1 -c"$wrk_conns" -d"${warmup}s" "$url" >"$base.warmup.txt" 2>&1 || true
    fi
    local c0 c1
    c0="$(cpu_ticks "$server_pid")"
    run_client "$base.wrk" wrk -t1 -c"$wrk_conns" -d"${secs}s" --latency "$url"
    c1="$(cpu_ticks "$server_pid")"
    [ "$client_rc" = 0 ] || status=wrk-failed
    alive "$server_pid" || status=died
    stop_server
    local w="$base.wrk.out" reqs rps p50 p99 sock non2xx
    reqs="$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$w")"
    rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$w")"
    p50="$(awk '$1 == "50%" { print $2 }' "$w")"
    p99="$(awk '$1 == "99%" { print $2 }' "$w")"
    sock="$(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$w" | awk '{ print $1 + $2 + $3 + $4 }')"
    non2xx="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$w")"
    [ -n "$reqs" ] && [ -n "$rps" ] || { [ "$status" = ok ] && status=no-output; }
    # No request done (every connection refused or its handshake failed): wrk's zeros are
    # not figures.
    if [ "${reqs:-}" = 0 ]; then rps=""; p50=""; p99=""; [ "$status" = ok ] && status=no-requests; fi
    local line="requests=${reqs:-NA} rps=${rps:-NA} p50_ms=$([ -n "$p50" ] && wrk_ms "$p50" || echo NA) p99_ms=$([ -n "$p99" ] && wrk_ms "$p99" || echo NA)"
    line="$line errors=$(( ${sock:-0} + ${non2xx:-0} )) socket_errors=${sock:-0} non2xx=${non2xx:-0}"
    echo "$tag status=$status $line$(cpu_fields "$c0" "$c1" "$reqs")" | tee -a "$results_b" >&2
}

busy_before="$(cpu_busy)"
log "machine busy before the runs: ${busy_before}% of all CPUs (anything else running skews the figures)"
[ "$busy_before" -le 10 ] || log "warning: the machine is not idle; the tables will say so"

active=()
for s in "${servers[@]}"; do [ -z "${skipped[$s]:-}" ] && active+=("$s"); done
if [ -z "${parts// /}" ]; then log "no part can run"
elif [ ${#active[@]} = 0 ]; then log "no server to measure"
else
    log "parts: $parts; servers: ${active[*]}; $runs round(s) of ${secs} s runs after ${warmup} s warm-ups; servers on CPU $server_cpu, clients on CPU $client_cpu"
    for round in $(seq "$runs"); do
        order=("${active[@]}")
        if [ $((round % 2)) = 0 ]; then order=(); for ((i = ${#active[@]} - 1; i >= 0; i--)); do order+=("${active[i]}"); done; fi
        log "round $round/$runs: ${order[*]}"
        for s in "${order[@]}"; do
            [[ " $parts " != *" a "* ]] || measure_handshakes "$round" "$s"
            [[ " $parts " != *" b "* ]] || measure_requests "$round" "$s"
        done
    done
    log "raw lines: $results_a, $results_b, $negotiated"
fi

# ---- the tables -----------------------------------------------------------------------------

awk_lib='
function med(s,    a, n, i, j, t) {
    n = split(s, a, " ")
    if (n == 0) return "NA"
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(s,    a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function hi(s,    a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
function num(x) { return x ~ /^[0-9]+([.][0-9]+)?$/ }
function fmt(s, f) { return s == "" ? "NA" : sprintf(f, med(s)) }
function parse(    i, k, v) {
    delete f
    for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
}
function pretty(s) { return s == "go" ? "go (net/http, crypto/tls)" : s == "hyper" ? "hyper 0.14 + tokio-rustls 0.23" : s }
function table(rate, unit,    n, S, i, k, range, limit) {
    n = split(order, S, " ")
    printf "| server | %s (median) | %s (min–max) | p50 ms | p99 ms | errors | server CPU µs/%s | server CPU %% | client CPU %% | limit |\n", rate, rate, unit
    print "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    for (i = 1; i <= n; i++) {
        k = S[i]; if (!(k in runs)) continue
        range = val[k] == "" ? "NA" : sprintf("%.0f–%.0f", lo(val[k]), hi(val[k]))
        # Which side set the pace: the one near a full core while the other is not.
        limit = (pct[k] != "" && med(pct[k]) >= 90) ? "server" : (cli[k] != "" && med(cli[k]) >= 90) ? "client" : "-"
        printf "| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", pretty(k), fmt(val[k], "%.0f"), range, fmt(p50[k], "%.2f"), fmt(p99[k], "%.2f"), err[k] + 0, fmt(cpu[k], "%.1f"), fmt(pct[k], "%.0f"), fmt(cli[k], "%.0f"), limit
        if (k in bad) notes = notes sprintf("- %s:%s\n", pretty(k), bad[k])
    }
    if (notes != "") { print ""; print "Runs that did not complete cleanly (their figures, if any, are in the medians above):"; printf "%s", notes }
}
{
    parse(); k = f["server"]; runs[k]++
    if (f["status"] != "ok") bad[k] = bad[k] " round " f["run"] ": " f["status"] ";"
    if (f["status"] == "nostart") next
    err[k] += f["errors"]
    if (num(f[ratekey])) val[k] = val[k] " " f[ratekey]
    if (num(f["p50_ms"])) p50[k] = p50[k] " " f["p50_ms"]
    if (num(f["p99_ms"])) p99[k] = p99[k] " " f["p99_ms"]
    if (num(f["srv_cpu_us_per_op"])) cpu[k] = cpu[k] " " f["srv_cpu_us_per_op"]
    if (num(f["srv_cpu_pct"])) pct[k] = pct[k] " " f["srv_cpu_pct"]
    if (num(f["cli_cpu_pct"])) cli[k] = cli[k] " " f["cli_cpu_pct"]
}'
skipped_list() { # → "- name: reason" lines
    local k
    for k in "${!skipped[@]}"; do
        if want "$k"; then echo "- $k: ${skipped[$k]}"; fi
    done | sort
}

rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
tables="$out/tables-$stamp.md"
{
if [ "$smoke" = 1 ]; then echo "**Smoke run (TLS_SMOKE=1): not for publishing.**"; echo; fi
if [ "$busy_before" -gt 10 ]; then
    echo "**The machine was not idle: other work used ${busy_before}% of all CPUs just before the runs, and may have taken CPU from these figures.**"; echo
fi
common="each server fresh for every measurement, on CPU $server_cpu with one thread of work, the client on CPU $client_cpu; an ECDSA P-256 leaf signed by a throw-away CA; median of $runs interleaved round(s) (errors: sum). Server CPU = its utime + stime over the measured run, per operation and as % of one core; client CPU = the client's user + system time as % of one core. Limit: the side that used ≥ 90% of its core (the server's checked first); where it is the client, the rate is the client's ceiling and the servers compare by CPU per operation."
if [ -s "$results_a" ]; then
    echo "### TLS 1.3 full handshakes per second"
    echo
    echo "$(date -u +%Y-%m-%d), Spindle $rev: \`go-handshake -c $hs_conns -d $secs\` after a ${warmup} s warm-up: $hs_conns goroutines each loop over new connections, a full TLS 1.3 handshake every time (no session cache), the chain verified, one \`GET /\` with \`Connection: close\`, read to EOF; latency = one connection, dial to EOF; $common"
    echo
    awk -v order="${servers[*]}" -v ratekey=hps "$awk_lib"' END { table("handshakes/s", "handshake") }' "$results_a"
    echo
fi
if [ -s "$results_b" ]; then
    echo "### HTTPS keep-alive requests per second"
    echo
    echo "$(date -u +%Y-%m-%d), Spindle $rev: \`wrk -t1 -c$wrk_conns -d${secs}s --latency https://localhost:PORT/\` (13-byte body, connections kept alive, so handshakes only as wrk connects; wrk's own TLS choices, below) after a ${warmup} s warm-up; $common"
    echo
    awk -v order="${servers[*]}" -v ratekey=rps "$awk_lib"' END { table("req/s", "request") }' "$results_b"
    echo
fi
if [ -s "$negotiated" ]; then
    echo "### What each server negotiated"
    echo
    echo "With OpenSSL's client (\`openssl s_client -alpn http/1.1\`, as wrk's OpenSSL offers; wrk itself sends no ALPN) and with Go's (go-handshake's first connection)."
    echo
    echo "| server | OpenSSL: protocol | cipher | group | ALPN | verified | Go: protocol | cipher | ALPN | resumed |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    awk -v order="${servers[*]}" '
    { delete f; for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
      s = f["server"]
      if (f["client"] == "openssl") o[s] = sprintf("%s | %s | %s | %s | %s", f["proto"], f["cipher"], f["group"], f["alpn"], f["verify"])
      else g[s] = sprintf("%s | %s | %s | %s", f["proto"], f["cipher"], f["alpn"], f["resumed"]) }
    END { n = split(order, S, " "); for (i = 1; i <= n; i++) { s = S[i]; if (!(s in o) && !(s in g)) continue
          printf "| %s | %s | %s |\n", s, (s in o) ? o[s] : "NA | NA | NA | NA | NA", (s in g) ? g[s] : "NA | NA | NA | NA" } }' "$negotiated"
    echo
fi
if [ -n "$(skipped_list)" ]; then echo "Skipped servers:"; skipped_list; fi
} | tee "$tables"
log "tables: $tables"
