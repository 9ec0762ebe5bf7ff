# Shared by bench/run and bench/under_load: a Release build, a throwaway PostgreSQL with
# 100,000 mailboxes, a bootstrap token, and helpers to start daemons and read loadgen figures.
# Sourced, not run. Everything started is recorded in pids and stopped on exit.

mq_install_deps
mq_log "building (Release)"
mq_build build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
B=build-bench

work=$(mktemp -d /tmp/mq-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    mq_pg_stop "$work/pg"
    rm -rf "$work"
}
trap cleanup EXIT
mq_pg_start "$work/pg"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$MQ_PGHOST" -U postgres)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for FILE PATTERN
    for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for $2 in $1" >&2; return 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

mq_log "creating 100,000 mailboxes"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
conn="host=$MQ_PGHOST user=postgres dbname=bench"
$B/mailquota -d "$conn" migrate >/dev/null
"${PSQL[@]}" -d bench >/dev/null <<'SQL'
INSERT INTO domains (name, default_storage_limit_bytes, max_message_size)
    VALUES ('bench.test', 52428800, 104857600);
INSERT INTO mailboxes (domain_id, local_part, used_bytes, used_messages)
    SELECT d.id, 'u' || g, (g * 7919) % 52428800, g % 1000
    FROM domains d, generate_series(0, 99999) g;
INSERT INTO mailboxes (domain_id, local_part, storage_limit_bytes)
    SELECT id, 'prop', 1000 FROM domains;
INSERT INTO aliases (domain_id, local_part) SELECT id, 'list' || g FROM domains, generate_series(1, 1000) g;
INSERT INTO alias_targets (alias_id, mailbox_id)
    SELECT a.id, m.id FROM aliases a JOIN mailboxes m ON m.local_part IN ('u1', 'u2', 'u3');
SQL
# HTTP requests carry a token, as in production (the do-nothing server gets the same header)
MQ_BENCH_TOKEN=$($B/mailquota -d "$conn" token bootstrap bench)
export MQ_BENCH_TOKEN

start_daemon() { # start_daemon NAME [extra -o args]; sets DPID
    local name=$1; shift
    $B/mailquotad -o "database_url=$conn" -o "policy_socket=$work/$name.sock" \
        -o "log_level=info" -o "view_load_timeout=120" "$@" >"$work/$name.log" 2>&1 &
    DPID=$!
    pids+=("$DPID")
    wait_for "$work/$name.log" "event=started"
}

get() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
median_run() { # the line with the median rps among the arguments
    for l in "$@"; do echo "$(get rps "$l") $l"; done | sort -n | sed -n "$(( ($# + 1) / 2 ))p" | cut -d' ' -f2-
}

build_rev() { # build_rev REV: REV's sources exported and built (Release) in $work/old; sets OLD_B
    mkdir "$work/old"
    git archive "$1" | tar -x -C "$work/old"
    mq_log "building $1 (Release)"
    (cd "$work/old" && mq_build build -DCMAKE_BUILD_TYPE=Release >/dev/null)
    OLD_B=$work/old/build
}
