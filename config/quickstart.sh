#!/usr/bin/env bash
# The quick start: installs what is missing, starts a local mail stack
# (Dovecot + OpenSMTPD on loopback), builds helpdeskd, runs the daemon with the
# embedded SQLite database and config/helpdesk.toml, sends a sample customer
# mail and shows the ticket it became. The daemon keeps running; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

stack=tests/mailstack/mailstack.sh
bash "$stack" install
bash "$stack" start
bash "$stack" adduser support secret
bash "$stack" adduser customer secret
# The example configuration's staff member and service manager, so their
# notifications and reports land in mailboxes (IMAP 127.0.0.1:11143, password "secret").
bash "$stack" adduser ada secret
bash "$stack" adduser servicemanager secret
export HELPDESK_IMAP_PASSWORD=secret

cargo build --release -p helpdeskd
bin=target/release/helpdeskd
config=config/helpdesk.toml

"$bin" --config "$config" migrate
"$bin" --config "$config" check
mkdir -p data
"$bin" --config "$config" run >>data/helpdeskd.log 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true' EXIT INT TERM

before=$("$bin" --config "$config" ticket list | wc -l)
swaks --silent 2 --server 127.0.0.1:12525 \
    --from customer@example.test --to support@example.test \
    --header "Subject: My printer is on fire" \
    --body "Hello, the printer on floor 3 is smoking. Can someone look at it?"

echo "waiting for the ticket..."
for _ in $(seq 1 60); do
    if [ "$("$bin" --config "$config" ticket list | wc -l)" -gt "$before" ]; then
        break
    fi
    sleep 0.5
done
number=$("$bin" --config "$config" ticket list | tail -n 1 | awk '{print $1}')
"$bin" --config "$config" ticket show "$number"
echo
echo "helpdeskd runs as pid $daemon (log: data/helpdeskd.log); mail support@example.test"
echo "through 127.0.0.1:12525 to open more tickets. Ctrl-C stops it."
wait "$daemon"
