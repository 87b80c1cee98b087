#!/usr/bin/env bash
# mailstack.sh - a real mail stack on loopback for helpdeskd's tests, CI and
# quick start: Dovecot (IMAP/IMAPS/LMTP) + OpenSMTPD (SMTP -> LMTP), as plain
# processes (no systemd). See README.md beside this file.
#
#   mailstack.sh install                         install the Debian packages if missing
#   mailstack.sh start                           start (or reuse) the main stack
#   mailstack.sh status                          exit 0 if the main stack is up
#   mailstack.sh adduser NAME [PASSWORD]         add/update a mail user (default password: secret)
#   mailstack.sh dovecot-start DIR IMAP IMAPS    start a private IMAP-only Dovecot in DIR
#   mailstack.sh dovecot-stop DIR                stop it (waits until its master has exited)
#   mailstack.sh oauth-start DIR IMAP SUBMISSION URL
#                                                start a private Dovecot in DIR whose logins are
#                                                XOAUTH2/OAUTHBEARER tokens checked at the
#                                                introspection URL (passdb oauth2), with IMAP and
#                                                submission (relaying to the main smtpd); stop it
#                                                with dovecot-stop DIR
#   mailstack.sh stop                            stop the main Dovecot and our smtpd
#   mailstack.sh env                             print KEY=VALUE lines (eval-able)
#
# Every subcommand except `env` prints nothing on success; errors go to stderr
# with a non-zero exit status.
set -euo pipefail
umask 022
export PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin"

DIR="${HELPDESK_MAILSTACK_DIR:-/tmp/helpdeskd-mailstack}"
[[ $DIR == /* ]] || DIR=$PWD/$DIR
DIR=${DIR%/}
HOST=127.0.0.1
IMAP_PORT=11143
IMAPS_PORT=11993
LMTP_PORT=12424
SMTP_PORT=12525
DOMAIN=example.test
MAIL_UID=8          # the Debian `mail` user; Dovecot's first_valid_uid below
MAIL_GID=8
DEFAULT_PASSWORD=secret
START_TIMEOUT=20    # seconds to wait for the ports
LOCK_TIMEOUT=120    # seconds to wait for another mailstack.sh holding the lock
LOCK_FD=9

PROG=${0##*/}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

usage() {
    sed -n '6,18s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------- helpers

# take an exclusive lock on FILE for the rest of this process. The lock fd must
# never be inherited by a daemon (it would hold the lock forever): daemons are
# started through spawn_detached, which closes every fd above 2.
take_lock() {
    local file=$1
    eval "exec ${LOCK_FD}>>\"\$file\""
    flock -w "$LOCK_TIMEOUT" "$LOCK_FD" || die "timed out waiting for the lock $file"
}

# run "$@" with stdin from /dev/null, stdout+stderr appended to LOG, no other
# inherited fds, in its own session; sets SPAWNED_PID to the pid of "$@" itself.
spawn_detached() {
    local log=$1
    shift
    (
        local fd
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
                eval "exec ${fd}>&-" 2>/dev/null || true
            fi
        done
        exec setsid "$@"
    ) </dev/null >>"$log" 2>&1 &
    SPAWNED_PID=$!
}

# run a daemonizing command (returns once it has forked) with clean fds.
run_daemon() {
    local log=$1
    shift
    (
        local fd
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
                eval "exec ${fd}>&-" 2>/dev/null || true
            fi
        done
        exec "$@"
    ) </dev/null >/dev/null 2>>"$log"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() {
    # shellcheck disable=SC2016
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# smtp_answers PORT: the listener greets with a 220 SMTP banner
smtp_answers() {
    # shellcheck disable=SC2016
    timeout 6 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        IFS= read -r -t 5 line <&3 || exit 1
        printf "QUIT\r\n" >&3
        [[ $line == 220* ]]' "$HOST" "$1" 2>/dev/null
}

# alive PID: PID exists and is not a zombie (an exited daemon whose parent,
# often pid 1 here, has not reaped it yet: kill -0 still succeeds on it)
alive() {
    local stat
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

# same_text FILE TEXT: FILE exists and holds exactly TEXT (modulo final newlines)
same_text() {
    [[ -r $1 ]] || return 1
    [[ "$(<"$1")" == "$2" ]]
}

# pid_is PID NAME: PID is alive and its command name is NAME
pid_is() {
    local pid=$1 name=$2 comm
    alive "$pid" || return 1
    { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 1
    [[ $comm == "$name" ]]
}

read_pid() {
    local f=$1 pid=""
    { read -r pid <"$f"; } 2>/dev/null || true
    printf '%s' "$pid"
}

# wait_gone PID SECONDS: wait for PID to exit; SIGKILL it after SECONDS
wait_gone() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 20; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    return 1
}

# who_listens PORT: a short description of the process listening on PORT
who_listens() {
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n1
}

# listener_pids PORT: pids of the processes holding a listening socket on PORT
listener_pids() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

show_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf '%s: ---- last lines of %s ----\n' "$PROG" "$f" >&2
        tail -n 25 "$f" >&2
    done
}

have_binaries() {
    command -v dovecot >/dev/null && command -v doveadm >/dev/null &&
        [[ -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/lmtp && -x /usr/lib/dovecot/submission ]] &&
        command -v smtpd >/dev/null && command -v swaks >/dev/null &&
        command -v openssl >/dev/null && command -v flock >/dev/null
}

# ---------------------------------------------------------------- install

apt_retry() {
    # apt_retry LOG apt-get ARGS...: retry while another apt/dpkg holds the lock
    local log=$1 deadline=$((SECONDS + 60))
    shift
    while :; do
        if DEBIAN_FRONTEND=noninteractive "$@" -o DPkg::Lock::Timeout=10 >"$log" 2>&1 </dev/null; then
            return 0
        fi
        if grep -Eq 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$log" &&
            ((SECONDS < deadline)); then
            sleep 2
            continue
        fi
        return 1
    done
}

cmd_install() {
    have_binaries && return 0
    [[ $(id -u) == 0 ]] || die "install needs root (apt-get)"
    local pkgs=(dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd swaks)
    command -v openssl >/dev/null || pkgs+=(openssl)
    command -v flock >/dev/null || pkgs+=(util-linux)
    local log
    log=$(mktemp /tmp/mailstack-apt.XXXXXX)
    # `apt-get update` only when the package lists do not know the packages
    local need_update=0 p
    for p in "${pkgs[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
            need_update=1
            break
        fi
    done
    if ((need_update)); then
        apt_retry "$log" apt-get update || {
            cat "$log" >&2
            die "apt-get update failed (log: $log)"
        }
    fi
    # --no-remove: opensmtpd conflicts with other MTAs (exim4, postfix,
    # msmtp-mta); refuse instead of silently removing them
    if ! apt_retry "$log" apt-get install -y --no-remove "${pkgs[@]}"; then
        if ((!need_update)) && grep -Eq 'Failed to fetch|Unable to locate|no installation candidate' "$log"; then
            if ! { apt_retry "$log" apt-get update &&
                apt_retry "$log" apt-get install -y --no-remove "${pkgs[@]}"; }; then
                cat "$log" >&2
                die "apt-get install failed (log: $log)"
            fi
        else
            cat "$log" >&2
            die "apt-get install failed (log: $log)"
        fi
    fi
    have_binaries || die "packages installed but binaries still missing (log: $log)"
    rm -f "$log"
}

# ---------------------------------------------------------------- state dir, cert, users

ensure_dir() {
    mkdir -p "$DIR"
    chmod 755 "$DIR"
}

# needs the lock. Self-signed, CN=localhost, SAN DNS:localhost,IP:127.0.0.1,
# basicConstraints CA:FALSE (rustls/webpki reject a CA:TRUE cert used as the
# server's own end-entity certificate), generated once and reused.
ensure_cert() {
    # ca.pem: the same file under the name the CA is trusted by (config/helpdesk.toml)
    [[ -L $DIR/ca.pem ]] || ln -sfn cert.pem "$DIR/ca.pem"
    [[ -s $DIR/cert.pem && -s $DIR/key.pem ]] && return 0
    local cnf=$DIR/openssl.cnf
    cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
[ext]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
EOF
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -config "$cnf" \
        -keyout "$DIR/key.pem.tmp" -out "$DIR/cert.pem.tmp" >/dev/null 2>"$DIR/openssl.err" || {
        cat "$DIR/openssl.err" >&2
        die "could not create the certificate"
    }
    chmod 600 "$DIR/key.pem.tmp"
    chmod 644 "$DIR/cert.pem.tmp"
    mv -f "$DIR/key.pem.tmp" "$DIR/key.pem"
    mv -f "$DIR/cert.pem.tmp" "$DIR/cert.pem"
    rm -f "$DIR/openssl.err"
}

# needs the lock
ensure_users() {
    [[ -e $DIR/users ]] || : >"$DIR/users"
    chmod 644 "$DIR/users"
    mkdir -p "$DIR/users.d"
    chmod 755 "$DIR/users.d"
    mkdir -p "$DIR/mail"
    chmod 755 "$DIR/mail"
    chown "$MAIL_UID:$MAIL_GID" "$DIR/mail"
}

# ---------------------------------------------------------------- Dovecot

# dovecot_conf STATE_DIR IMAP_PORT IMAPS_PORT LMTP_PORT|"" : print a config
dovecot_conf() {
    local sdir=$1 imap=$2 imaps=$3 lmtp=$4 protocols="imap"
    [[ -n $lmtp ]] && protocols="imap lmtp"
    cat <<EOF
# generated by mailstack.sh - do not edit (rewritten on start)
base_dir = $sdir/run
state_dir = $sdir/run/state
listen = $HOST
protocols = $protocols
ssl = yes
ssl_cert = <$DIR/cert.pem
ssl_key = <$DIR/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# user names are lower case, without domain: Alice@example.test is alice
auth_username_format = %Ln
auth_verbose = yes
mail_location = maildir:~/Maildir
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = $MAIL_UID
recipient_delimiter = +
lda_mailbox_autocreate = yes
# warnings and errors; the chatty info lines (logins, deliveries, and every
# port probe of "mailstack.sh start") go to dovecot-info.log
log_path = $sdir/dovecot.log
info_log_path = $sdir/dovecot-info.log
default_process_limit = 256
default_client_limit = 2000
# users.d/NAME first: Dovecot re-stats a passwd-file at most once per second,
# so a user appended to one shared file can stay unknown for up to a second;
# a per-user file it has never looked at is always read fresh. The aggregate
# file is the fallback (for lines written there by hand).
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DIR/users.d/%n
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $DIR/users.d/%n
}
userdb {
  driver = passwd-file
  args = username_format=%n $DIR/users
}
service imap-login {
  inet_listener imap {
    port = $imap
  }
  inet_listener imaps {
    port = $imaps
    ssl = yes
  }
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 1000
}
service imap {
  process_limit = 1024
}
protocol imap {
  mail_max_userip_connections = 1000
}
EOF
    if [[ -n $lmtp ]]; then
        cat <<EOF
service lmtp {
  inet_listener lmtp {
    address = $HOST
    port = $lmtp
  }
  process_limit = 256
}
protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
EOF
    fi
}

# oauth_dovecot_conf STATE_DIR IMAP_PORT SUBMISSION_PORT : print the config of
# a Dovecot whose passwords are OAuth2 tokens (Dovecot's own oauth2 passdb,
# asking the introspection endpoint of STATE_DIR/dovecot-oauth2.conf.ext), on
# plain loopback ports, sharing the main stack's users and maildirs
oauth_dovecot_conf() {
    local sdir=$1 imap=$2 submission=$3
    cat <<EOF
# generated by mailstack.sh - do not edit (rewritten on start)
base_dir = $sdir/run
state_dir = $sdir/run/state
listen = $HOST
protocols = imap submission
ssl = no
disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer plain login
auth_username_format = %Ln
auth_verbose = yes
mail_location = maildir:~/Maildir
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = $MAIL_UID
log_path = $sdir/dovecot.log
info_log_path = $sdir/dovecot-info.log
hostname = localhost
submission_relay_host = $HOST
submission_relay_port = $SMTP_PORT
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $sdir/dovecot-oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%n $DIR/users.d/%n
}
userdb {
  driver = passwd-file
  args = username_format=%n $DIR/users
}
service imap-login {
  inet_listener imap {
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = $submission
  }
}
EOF
}

# oauth_passdb_conf URL : the oauth2 passdb's settings
oauth_passdb_conf() {
    cat <<EOF
introspection_url = $1
introspection_mode = post
username_attribute = username
active_attribute = active
active_value = true
EOF
}

dovecot_running() { # STATE_DIR
    pid_is "$(read_pid "$1/run/master.pid")" dovecot
}

dovecot_stop() { # STATE_DIR
    local sdir=$1 pid children child
    pid=$(read_pid "$sdir/run/master.pid")
    pid_is "$pid" dovecot || return 0
    # Client sessions (imap processes) outlive a stopped master here even with
    # shutdown_clients = yes; a stopped server must drop its clients, so they
    # are killed too.
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for child in $children; do
        kill -KILL "$child" 2>/dev/null || true
    done
    wait_gone "$pid" 10 || die "Dovecot master $pid (in $sdir) did not exit"
}

# dovecot_up STATE_DIR IMAP IMAPS LMTP|"" CONF_TEXT: running with this config
# and every port answers
dovecot_up() {
    local sdir=$1 imap=$2 imaps=$3 lmtp=$4 conf=$5
    dovecot_running "$sdir" || return 1
    same_text "$sdir/dovecot.conf" "$conf" || return 1
    port_open "$imap" && port_open "$imaps" || return 1
    [[ -z $lmtp ]] || port_open "$lmtp"
}

# dovecot_start STATE_DIR IMAP IMAPS LMTP|"" : (re)start so that dovecot_up holds
dovecot_start() {
    local sdir=$1 imap=$2 imaps=$3 lmtp=$4 conf p who pid
    conf=$(dovecot_conf "$sdir" "$imap" "$imaps" "$lmtp")
    dovecot_up "$sdir" "$imap" "$imaps" "$lmtp" "$conf" && return 0
    # a master that is up but stale (other config) or half-dead: stop it and
    # wait for it to exit before starting a new one on the same base_dir
    dovecot_stop "$sdir"
    for p in "$imap" "$imaps" $lmtp; do
        # a master of this config whose pid file is gone (state dir removed
        # under it): stop it
        for pid in $(listener_pids "$p"); do
            if pid_is "$pid" dovecot &&
                [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *" -c $sdir/dovecot.conf"* ]]; then
                kill -TERM "$pid" 2>/dev/null || true
                wait_gone "$pid" 10 || true
            fi
        done
        if port_open "$p"; then
            who=$(who_listens "$p")
            die "port $p is already in use by ${who:-another process} (not the Dovecot of $sdir)"
        fi
    done
    # unix socket paths are limited to 108 bytes (e.g. run/login/imap-urlauth)
    ((${#sdir} <= 70)) || die "state directory path too long for Dovecot's sockets (max 70 chars): $sdir"
    mkdir -p "$sdir/run"
    chmod 755 "$sdir" "$sdir/run"
    printf '%s\n' "$conf" >"$sdir/dovecot.conf"
    : >"$sdir/dovecot.err"
    # Dovecot daemonizes but keeps stderr open: never give it a pipe
    run_daemon "$sdir/dovecot.err" dovecot -c "$sdir/dovecot.conf" || {
        show_logs "$sdir/dovecot.err" "$sdir/dovecot.log"
        die "dovecot failed to start (config $sdir/dovecot.conf)"
    }
}

# ---------------------------------------------------------------- OpenSMTPD

# plain SMTP only: OpenSMTPD 6.8.0p2 on Debian 12 (OpenSSL 3) fails every
# STARTTLS handshake in which the client sends SNI ("EVP lib" error)
smtpd_conf() {
    cat <<EOF
# generated by mailstack.sh - do not edit (rewritten on start)
table vusers { "@$DOMAIN" = "mail" }
listen on $HOST port $SMTP_PORT
action "deliver" lmtp "$HOST:$LMTP_PORT" rcpt-to virtual <vusers>
match from any for domain "$DOMAIN" action "deliver"
EOF
}

our_smtpd_pid() {
    local pid
    pid=$(read_pid "$DIR/smtpd.pid")
    pid_is "$pid" smtpd && printf '%s' "$pid"
}

smtpd_up() {
    if our_smtpd_pid >/dev/null; then
        same_text "$DIR/smtpd.conf" "$(smtpd_conf)" && port_open "$SMTP_PORT"
    else
        smtp_answers "$SMTP_PORT"
    fi
}

smtpd_start() {
    local pid
    if our_smtpd_pid >/dev/null; then
        # ours: keep it unless its config is stale
        ! same_text "$DIR/smtpd.conf" "$(smtpd_conf)" || return 0
        smtpd_stop
    fi
    rm -f "$DIR/smtpd.pid"
    # ours, but its pid file is gone (state dir removed under it): stop it
    for pid in $(pgrep -x smtpd || true); do
        if alive "$pid" &&
            [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "smtpd -d -f $DIR/smtpd.conf " ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || true
        fi
    done
    # one smtpd per machine (system spool, /run/smtpd.sock): reuse whatever
    # answers SMTP on our port
    if port_open "$SMTP_PORT"; then
        smtp_answers "$SMTP_PORT" && return 0
        die "port $SMTP_PORT is in use by $(who_listens "$SMTP_PORT") which does not answer SMTP"
    fi
    for pid in $(pgrep -x smtpd || true); do
        # skip zombies (exited, not yet reaped)
        alive "$pid" || continue
        die "another smtpd (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) is running but not listening on $SMTP_PORT; only one smtpd per machine can run - stop it first"
    done
    smtpd_conf >"$DIR/smtpd.conf"
    chmod 644 "$DIR/smtpd.conf"
    smtpd -n -f "$DIR/smtpd.conf" >"$DIR/smtpd.check" 2>&1 || {
        cat "$DIR/smtpd.check" >&2
        die "invalid smtpd config $DIR/smtpd.conf"
    }
    # -d keeps it in the foreground so that its log goes to a file (there is
    # no syslog here); setsid detaches it from the caller's session
    spawn_detached "$DIR/smtpd.log" smtpd -d -f "$DIR/smtpd.conf"
    printf '%s\n' "$SPAWNED_PID" >"$DIR/smtpd.pid"
}

smtpd_stop() {
    local pid
    pid=$(our_smtpd_pid) || {
        rm -f "$DIR/smtpd.pid"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "smtpd $pid did not exit"
    rm -f "$DIR/smtpd.pid"
}

# ---------------------------------------------------------------- subcommands

main_up() {
    local conf
    conf=$(dovecot_conf "$DIR" "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT")
    dovecot_up "$DIR" "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT" "$conf" && smtpd_up
}

# wait_ports CHECK LOGS... -- PORTS...: wait until every port accepts
# connections; fail at once when the command CHECK fails (a daemon died)
wait_ports() {
    local check=$1 logs=() ports=() p deadline=$((SECONDS + START_TIMEOUT)) all
    shift
    while (($#)) && [[ $1 != -- ]]; do
        logs+=("$1")
        shift
    done
    shift
    ports=("$@")
    while :; do
        all=1
        for p in "${ports[@]}"; do
            port_open "$p" || {
                all=0
                break
            }
        done
        ((all)) && return 0
        if ! $check; then
            sleep 0.5 # let the logs be written
            show_logs "${logs[@]}"
            die "a daemon exited during startup (port $p not open)"
        fi
        if ((SECONDS >= deadline)); then
            show_logs "${logs[@]}"
            die "timed out after ${START_TIMEOUT}s waiting for port $p"
        fi
        sleep 0.1
    done
}

# our daemons are still running (smtpd: unless we reuse a foreign one)
main_alive() {
    dovecot_running "$DIR" || return 1
    [[ ! -e $DIR/smtpd.pid ]] || our_smtpd_pid >/dev/null
}

private_alive() {
    dovecot_running "$PRIVATE_DIR"
}

cmd_start() {
    # fast path, no lock: already up
    [[ -d $DIR ]] && have_binaries && main_up && return 0
    have_binaries || cmd_install
    ensure_dir
    take_lock "$DIR/.lock"
    main_up && return 0 # somebody else started it while we waited
    ensure_cert
    ensure_users
    dovecot_start "$DIR" "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT"
    # smtpd needs LMTP only at delivery time, but start it after Dovecot anyway
    smtpd_start
    wait_ports main_alive "$DIR/dovecot.err" "$DIR/dovecot.log" "$DIR/smtpd.log" -- \
        "$IMAP_PORT" "$IMAPS_PORT" "$LMTP_PORT" "$SMTP_PORT"
    main_up || {
        show_logs "$DIR/dovecot.err" "$DIR/dovecot.log" "$DIR/smtpd.log"
        die "the stack did not come up"
    }
}

cmd_status() {
    [[ -d $DIR ]] && main_up
}

cmd_stop() {
    [[ -d $DIR ]] || return 0
    take_lock "$DIR/.lock"
    dovecot_stop "$DIR"
    smtpd_stop
}

cmd_adduser() {
    (($# >= 1 && $# <= 2)) || usage
    local name=$1 pass=${2:-$DEFAULT_PASSWORD}
    [[ $name =~ ^[a-z0-9][a-z0-9._-]*$ ]] ||
        die "invalid user name '$name' (lower-case letters, digits, . _ - only; '+' is the recipient delimiter)"
    [[ $pass != *:* && $pass != *$'\n'* && -n $pass ]] || die "invalid password (empty, or contains ':' or a newline)"
    ensure_dir
    take_lock "$DIR/.lock"
    ensure_users
    local home=$DIR/mail/$name
    local line="$name:{PLAIN}$pass:$MAIL_UID:$MAIL_GID::$home::"
    if [[ ! -d $home ]]; then
        mkdir -p "$home"
        chmod 700 "$home"
        chown "$MAIL_UID:$MAIL_GID" "$home"
    elif [[ $(stat -c %u:%g "$home") != "$MAIL_UID:$MAIL_GID" ]]; then
        chown -R "$MAIL_UID:$MAIL_GID" "$home"
    fi
    local ufile=$DIR/users.d/$name changed=0
    if ! same_text "$ufile" "$line"; then
        [[ -f $ufile ]] && changed=1
        write_passwd_file "$ufile" "$line"
    fi
    if ! grep -qxF -- "$line" "$DIR/users"; then
        if grep -q -- "^$name:" "$DIR/users"; then
            changed=1
        fi
        { grep -v -- "^$name:" "$DIR/users" || true; printf '%s\n' "$line"; } >"$DIR/users.tmp.$$"
        write_passwd_file "$DIR/users" "" "$DIR/users.tmp.$$"
    fi
    flock -u "$LOCK_FD"
    # a changed password: Dovecot may have looked at the old file earlier in
    # this second and will not stat it again before the next one
    if ((changed)); then
        sleep_to_next_second
    fi
}

# write_passwd_file FILE LINE [TMPFILE]: replace FILE atomically (Dovecot must
# never see it half written) with LINE or TMPFILE's content, making sure its
# mtime differs from the old one (Dovecot reloads on a changed mtime or size)
write_passwd_file() {
    local file=$1 line=$2 tmp=${3:-$1.tmp.$$} old_mtime now
    [[ -n ${3:-} ]] || printf '%s\n' "$line" >"$tmp"
    chmod 644 "$tmp"
    if [[ -e $file ]]; then
        old_mtime=$(stat -c %Y "$file")
        now=$(stat -c %Y "$tmp")
        if ((now <= old_mtime)); then
            touch -d "@$((old_mtime + 1))" "$tmp"
        fi
    fi
    mv -f "$tmp" "$file"
}

sleep_to_next_second() {
    local ns ms
    ns=$(date +%N)
    ns=${ns#"${ns%%[1-9]*}"} # strip leading zeros
    ms=$(((1000000000 - ${ns:-0}) / 1000000 + 20))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
}

cmd_dovecot_start() {
    (($# == 3)) || usage
    local pdir=$1 imap=$2 imaps=$3
    [[ $imap =~ ^[0-9]+$ && $imaps =~ ^[0-9]+$ ]] || die "ports must be numbers"
    [[ $pdir == /* ]] || pdir=$PWD/$pdir
    pdir=${pdir%/}
    [[ $pdir != "$DIR" ]] || die "the private instance needs its own directory, not $DIR"
    for p in "$imap" "$imaps"; do
        case $p in "$IMAP_PORT" | "$IMAPS_PORT" | "$LMTP_PORT" | "$SMTP_PORT")
            die "port $p belongs to the main stack" ;;
        esac
    done
    local conf
    conf=$(dovecot_conf "$pdir" "$imap" "$imaps" "")
    [[ -d $pdir ]] && have_binaries && dovecot_up "$pdir" "$imap" "$imaps" "" "$conf" && return 0
    have_binaries || cmd_install
    # the cert and users file of the main stack dir (lock order: main, then private)
    ensure_dir
    take_lock "$DIR/.lock"
    ensure_cert
    ensure_users
    mkdir -p "$pdir"
    chmod 755 "$pdir"
    exec 8>>"$pdir/.lock"
    flock -w "$LOCK_TIMEOUT" 8 || die "timed out waiting for the lock $pdir/.lock"
    flock -u "$LOCK_FD" # main lock no longer needed
    dovecot_start "$pdir" "$imap" "$imaps" ""
    PRIVATE_DIR=$pdir
    wait_ports private_alive "$pdir/dovecot.err" "$pdir/dovecot.log" -- "$imap" "$imaps"
}

cmd_dovecot_stop() {
    (($# == 1)) || usage
    local pdir=$1
    [[ $pdir == /* ]] || pdir=$PWD/$pdir
    pdir=${pdir%/}
    [[ -d $pdir ]] || return 0
    [[ $pdir != "$DIR" ]] || die "use '$PROG stop' for the main stack"
    exec 8>>"$pdir/.lock"
    flock -w "$LOCK_TIMEOUT" 8 || die "timed out waiting for the lock $pdir/.lock"
    dovecot_stop "$pdir"
}

cmd_oauth_start() {
    (($# == 4)) || usage
    local pdir=$1 imap=$2 submission=$3 url=$4 conf p
    [[ $imap =~ ^[0-9]+$ && $submission =~ ^[0-9]+$ ]] || die "ports must be numbers"
    [[ $url == http://127.0.0.1:* ]] || die "the introspection URL must be http://127.0.0.1:PORT/..."
    [[ $pdir == /* ]] || pdir=$PWD/$pdir
    pdir=${pdir%/}
    [[ $pdir != "$DIR" ]] || die "the private instance needs its own directory, not $DIR"
    for p in "$imap" "$submission"; do
        case $p in "$IMAP_PORT" | "$IMAPS_PORT" | "$LMTP_PORT" | "$SMTP_PORT")
            die "port $p belongs to the main stack" ;;
        esac
    done
    ((${#pdir} <= 70)) || die "state directory path too long for Dovecot's sockets (max 70 chars): $pdir"
    have_binaries || cmd_install
    ensure_dir
    take_lock "$DIR/.lock"
    ensure_users
    mkdir -p "$pdir/run"
    chmod 755 "$pdir" "$pdir/run"
    exec 8>>"$pdir/.lock"
    flock -w "$LOCK_TIMEOUT" 8 || die "timed out waiting for the lock $pdir/.lock"
    flock -u "$LOCK_FD"
    dovecot_stop "$pdir"
    for p in "$imap" "$submission"; do
        if port_open "$p"; then
            die "port $p is already in use by $(who_listens "$p")"
        fi
    done
    conf=$(oauth_dovecot_conf "$pdir" "$imap" "$submission")
    printf '%s\n' "$conf" >"$pdir/dovecot.conf"
    oauth_passdb_conf "$url" >"$pdir/dovecot-oauth2.conf.ext"
    chmod 644 "$pdir/dovecot-oauth2.conf.ext"
    : >"$pdir/dovecot.err"
    run_daemon "$pdir/dovecot.err" dovecot -c "$pdir/dovecot.conf" || {
        show_logs "$pdir/dovecot.err" "$pdir/dovecot.log"
        die "dovecot failed to start (config $pdir/dovecot.conf)"
    }
    PRIVATE_DIR=$pdir
    wait_ports private_alive "$pdir/dovecot.err" "$pdir/dovecot.log" -- "$imap" "$submission"
}

cmd_env() {
    local k v
    for k in DIR HOST IMAP_PORT IMAPS_PORT LMTP_PORT SMTP_PORT DOMAIN; do
        v=${!k}
        printf 'HELPDESK_MAILSTACK_%s=%q\n' "$k" "$v"
    done
    printf 'HELPDESK_MAILSTACK_CA=%q\n' "$DIR/cert.pem"
    printf 'HELPDESK_MAILSTACK_CA_CERT=%q\n' "$DIR/cert.pem"
    printf 'HELPDESK_MAILSTACK_DOVECOT_CONF=%q\n' "$DIR/dovecot.conf"
    printf 'HELPDESK_MAILSTACK_USERS_FILE=%q\n' "$DIR/users"
    printf 'HELPDESK_MAILSTACK_DEFAULT_PASSWORD=%q\n' "$DEFAULT_PASSWORD"
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
install) cmd_install "$@" ;;
start) cmd_start "$@" ;;
status) cmd_status "$@" ;;
stop) cmd_stop "$@" ;;
adduser) cmd_adduser "$@" ;;
dovecot-start) cmd_dovecot_start "$@" ;;
dovecot-stop) cmd_dovecot_stop "$@" ;;
oauth-start) cmd_oauth_start "$@" ;;
env) cmd_env "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
