# Shared by scripts/quickstart and scripts/test: dependency install, build, throwaway PostgreSQL.
# Sourced, not run. Everything it starts is recorded so the caller can stop it by PID.

MQ_DEBS="gcc cmake make pkg-config libpq-dev libmicrohttpd-dev nettle-dev libjansson-dev libinih-dev
libcurl4-gnutls-dev python3-jsonschema python3-yaml
libcmocka-dev libmilter-dev m4 postgresql-15 postgresql-client-15 python3 clang-format-14 postfix postfix-pgsql curl acl clang-14 libclang-rt-14-dev
iproute2 procps util-linux chromium dovecot-core dovecot-pgsql dovecot-lmtpd libsystemd-dev prometheus"

mq_log() { printf '==> %s\n' "$*" >&2; }

# Install whatever Debian packages are missing (root, non-interactive). Postfix is preseeded to
# "No configuration"; its and Dovecot's system instances are kept disabled: tests run their own.
mq_install_deps() {
    local missing=() p
    for p in $MQ_DEBS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    # Node.js and npm build and run the TypeScript client (clients/typescript): Debian's,
    # unless a node and an npm are on PATH already (another install of them is left alone)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "missing packages: ${missing[*]} (run as root to install them)" >&2
            return 1
        fi
        mq_log "installing: ${missing[*]}"
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # no service of a package starts at install (Postfix, Dovecot: the tests run their own
        # instances on loopback): a policy-rc.d of our own while none is there
        local policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' > "$policy"
            chmod 755 "$policy"
        fi
        local rc=0
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
        [ -z "$policy" ] || rm -f "$policy"
        [ "$rc" -eq 0 ] || return "$rc"
    fi
    mq_disable_system_postfix
    mq_disable_system_dovecot
    mq_disable_system_prometheus
}

# Debian's prometheus package is here for promtool (tests/integration/test_metrics.py lints a
# scrape with it); its server is never wanted running
mq_disable_system_prometheus() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
}

mq_disable_system_dovecot() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now dovecot.socket dovecot >/dev/null 2>&1 || true
    fi
    if [ -f /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
        doveadm stop >/dev/null 2>&1 || true
    fi
}

mq_disable_system_postfix() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now postfix >/dev/null 2>&1 || true
    fi
    if [ -f /etc/postfix/main.cf ] && postfix status >/dev/null 2>&1; then
        postfix stop >/dev/null 2>&1 || true
    fi
}

# mq_build DIR [cmake args...]
mq_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

MQ_PG_BIN=/usr/lib/postgresql/15/bin

# mq_pg_as_postgres COMMAND...: run as the postgres user from /, so that a current directory
# that user cannot enter (a clone under /root or a 0700 home) draws no "could not change
# directory" complaint from the PostgreSQL tools. Paths given must be absolute.
mq_pg_as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

# mq_pg_start DIR: initdb into DIR/data (owned by postgres), listen only on a Unix socket in
# DIR (no TCP), trust auth for the local superuser. Sets MQ_PGHOST and MQ_PG_PID.
mq_pg_start() {
    local dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 755 "$dir"
    chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mq_pg_as_postgres "$MQ_PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    fi
    mq_pg_as_postgres "$MQ_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off \
            -c max_connections=200" start >/dev/null
    MQ_PGHOST=$dir
    MQ_PG_PID=$(head -1 "$dir/data/postmaster.pid")
    export MQ_PGHOST MQ_PG_PID
}

mq_pg_stop() {
    local dir
    dir=$(cd "$1" 2>/dev/null && pwd) || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        mq_pg_as_postgres "$MQ_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
