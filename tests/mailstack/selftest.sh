#!/usr/bin/env bash
# selftest.sh - end-to-end check of mailstack.sh on this machine: start (also
# twice at once), adduser, SMTP -> LMTP -> IMAP, plus-addressing, STARTTLS and
# IMAPS verified against the stack's certificate, 50 concurrent IMAP sessions,
# a private Dovecot instance reading the same maildirs, stop and start again.
# Uses the fixed ports, so it stops any main stack running with another state
# dir. Prints one line per check; exit 0 when all pass.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ms=$here/mailstack.sh

# stop a main stack of another state dir (same ports) before using our own
"$ms" stop
HELPDESK_MAILSTACK_DIR=$(mktemp -d /tmp/mailstack-selftest.XXXXXX)
export HELPDESK_MAILSTACK_DIR
priv=$HELPDESK_MAILSTACK_DIR-priv
cleanup() {
    "$ms" dovecot-stop "$priv" || true
    "$ms" stop || true
    rm -rf "$HELPDESK_MAILSTACK_DIR" "$priv"
}
trap cleanup EXIT

ok() { printf 'ok   %s\n' "$*"; }
fail() {
    printf 'FAIL %s\n' "$*"
    exit 1
}

"$ms" install || fail "install"
ok "install"

# two concurrent starts on a fresh state dir; output captured through a pipe
# (a daemon inheriting it would make this hang)
out1=$(mktemp)
out2=$(mktemp)
"$ms" start >"$out1" 2>&1 &
p1=$!
"$ms" start >"$out2" 2>&1 &
p2=$!
wait "$p1" || fail "start #1: $(cat "$out1")"
wait "$p2" || fail "start #2: $(cat "$out2")"
[[ ! -s $out1 && ! -s $out2 ]] || fail "start printed something: $(cat "$out1" "$out2")"
rm -f "$out1" "$out2"
n=$(pgrep -fc -- "-c $HELPDESK_MAILSTACK_DIR/dovecot.conf" || true)
[[ $n == 1 ]] || fail "expected 1 Dovecot master, found $n"
captured=$(timeout 10 "$ms" start) || fail "start (captured) hung or failed"
[[ -z $captured ]] || fail "start printed: $captured"
"$ms" status || fail "status after start"
ok "start (twice concurrently, then again: idempotent)"

eval "$("$ms" env)"
[[ $HELPDESK_MAILSTACK_DIR == "$(cd "$HELPDESK_MAILSTACK_DIR" && pwd)" ]] || fail "env DIR"
[[ -s $HELPDESK_MAILSTACK_CA_CERT ]] || fail "no cert at $HELPDESK_MAILSTACK_CA_CERT"
ok "env"

"$ms" adduser alice
"$ms" adduser bob secret2
"$ms" adduser alice # idempotent
[[ $(grep -c '^alice:' "$HELPDESK_MAILSTACK_USERS_FILE") == 1 ]] || fail "alice listed twice"
ok "adduser"

swaks --server "127.0.0.1:$HELPDESK_MAILSTACK_SMTP_PORT" --from bob@example.test \
    --to alice@example.test --header "Subject: selftest-plain" >/dev/null || fail "swaks to alice"
swaks --server "127.0.0.1:$HELPDESK_MAILSTACK_SMTP_PORT" --from bob@example.test \
    --to alice+INC-7.x@example.test --header "Subject: selftest-plus" >/dev/null || fail "swaks to alice+tag"
ok "SMTP accepted"

python3 - "$HELPDESK_MAILSTACK_CA_CERT" "$HELPDESK_MAILSTACK_IMAP_PORT" "$HELPDESK_MAILSTACK_IMAPS_PORT" <<'EOF' || fail "IMAP checks"
import imaplib, ssl, sys, threading, time
cert, imap_port, imaps_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cert)   # verifies chain and host name

def subjects(c):
    typ, d = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT DELIVERED-TO)])")
    return [x[1].decode() for x in d if isinstance(x, tuple)]

deadline = time.time() + 10
while True:
    c = imaplib.IMAP4("localhost", imap_port)
    assert "STARTTLS" in c.capabilities, c.capabilities
    c.starttls(ssl_context=ctx)
    c.login("alice", "secret")
    n = int(c.select("INBOX")[1][0])
    if n >= 2 or time.time() > deadline:
        break
    c.logout(); time.sleep(0.1)
subs = "\n".join(subjects(c))
assert n == 2, f"alice INBOX has {n} messages"
assert "selftest-plain" in subs and "selftest-plus" in subs, subs
assert "alice+INC-7.x@example.test" in subs, subs
c.logout()
print("ok   mail delivered to alice's INBOX, plus-addressed too (STARTTLS on localhost)")

for host in ("localhost", "127.0.0.1"):
    s = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
    s.login("bob", "secret2"); s.logout()
print("ok   IMAPS verified for localhost and 127.0.0.1")

errs, conns, lock = [], [], threading.Lock()
def one(i):
    try:
        if i % 2:
            x = imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=ctx)
        else:
            x = imaplib.IMAP4("127.0.0.1", imap_port); x.starttls(ssl_context=ctx)
        x.login("alice", "secret"); x.select("INBOX")
        with lock: conns.append(x)
    except Exception as e:
        with lock: errs.append(repr(e))
ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
[t.start() for t in ts]; [t.join() for t in ts]
assert not errs, errs[:3]
for x in conns: x.logout()
print("ok   50 concurrent IMAP sessions of one user")
EOF

# a user added now is known at once (LMTP and IMAP)
"$ms" adduser carol pw-carol
swaks --server "127.0.0.1:$HELPDESK_MAILSTACK_SMTP_PORT" --from bob@example.test \
    --to carol@example.test --header "Subject: selftest-fresh" >/dev/null || fail "swaks to carol"
python3 - "$HELPDESK_MAILSTACK_IMAP_PORT" <<'EOF' || fail "fresh user"
import imaplib, sys, time
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); c.login("carol", "pw-carol")
t = time.time()
while int(c.select("INBOX")[1][0]) < 1:
    assert time.time() - t < 10, "carol's mail did not arrive"
    time.sleep(0.1)
print("ok   freshly added user receives mail and logs in")
EOF

"$ms" dovecot-start "$priv" 11144 11994 || fail "dovecot-start"
"$ms" dovecot-start "$priv" 11144 11994 || fail "dovecot-start again"
python3 - "$HELPDESK_MAILSTACK_CA_CERT" <<'EOF' || fail "private instance"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
c = imaplib.IMAP4_SSL("localhost", 11994, ssl_context=ctx); c.login("alice", "secret")
assert int(c.select("INBOX")[1][0]) == 2
c.logout()
c = imaplib.IMAP4("127.0.0.1", 11144); c.starttls(ssl_context=ctx); c.login("alice", "secret")
assert int(c.select("INBOX")[1][0]) == 2
print("ok   private instance on 11144/11994 reads alice's mail")
EOF
"$ms" dovecot-stop "$priv" || fail "dovecot-stop"
if (exec 3<>/dev/tcp/127.0.0.1/11144) 2>/dev/null; then fail "11144 still open after dovecot-stop"; fi
"$ms" status || fail "main stack disturbed by the private instance"
ok "dovecot-stop"

"$ms" stop || fail "stop"
if "$ms" status; then fail "status after stop"; fi
"$ms" start || fail "start after stop"
python3 - "$HELPDESK_MAILSTACK_IMAP_PORT" <<'EOF' || fail "after restart"
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); c.login("alice", "secret")
assert int(c.select("INBOX")[1][0]) == 2
EOF
ok "stop, start again, mail still there"
echo "all mailstack checks passed"
