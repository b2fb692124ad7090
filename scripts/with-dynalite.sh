#!/usr/bin/env bash
# with-dynalite.sh CMD...: starts dynalite (a DynamoDB-API server) on a free
# 127.0.0.1 port, creates Streamer's tables with `streamer tables create`,
# runs CMD with STREAMER_DYNAMODB_ENDPOINT set, and stops the server on exit,
# whether CMD passed or failed.
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "with-dynalite: dynalite 4 needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "Install Node.js 20 or newer; Debian's nodejs package (18) is too old." >&2
  exit 1
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || echo $((20000 + RANDOM % 20000)))
log=$(mktemp)
node --require ./runtime/dynalite/keepalive.js .tools/node_modules/dynalite/cli.js --host 127.0.0.1 --port "$port" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$log" 2>&1 &
pid=$!
cleanup() {
  if ! kill -0 "$pid" 2>/dev/null; then
    # A server that died mid-run explains a wall of "connection refused".
    echo "with-dynalite: dynalite exited during the run; its output:" >&2
    cat "$log" >&2
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT INT TERM

endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "with-dynalite: dynalite exited:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.1
done

export STREAMER_DYNAMODB_ENDPOINT="$endpoint"
export STREAMER_REQUIRE_DYNAMODB=1
# Credentials are only needed for SigV4 signing; dynalite does not check them.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}" AWS_REGION="${AWS_REGION:-us-east-1}"
go run ./cmd/streamer tables create --endpoint "$endpoint"
echo "with-dynalite: dynalite at $endpoint"
"$@"
