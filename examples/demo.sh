#!/bin/sh
# The seed scenario under superv: a server accepts one connection, a forked
# child reads it with read() and passes the bytes on through a pipe; a client
# outside superv sends 2048 bytes.  Prints the per-process reports.
set -e
superv=$1
out=$2
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$out"
"$superv" run -o "$out" -- build/seed serve "$port" &
server=$!
build/seed send "$port"
wait "$server"
for log in "$out"/*.log; do
    echo "== $log"
    cat "$log"
done
echo "== $out/summary.json: connections"
python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["connections"], indent=2))' "$out/summary.json"
