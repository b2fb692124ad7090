#!/bin/sh
# run.sh WSPORT TABLE DDB: serverless-offline (handlers in its own process,
# --useInProcess) serving the chat app setup.sh copied here, for peerbench.
cd "$(dirname "$0")"
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export TABLE_NAME="$2" DDB_ENDPOINT="$3" MANAGEMENT_ENDPOINT="http://127.0.0.1:$1"
export SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off SLS_DEPRECATION_DISABLE='*' AWS_REGION=us-east-1
exec node node_modules/serverless/bin/serverless.js offline start --useInProcess --host 127.0.0.1 --websocketPort "$1" --httpPort "$(free)" --lambdaPort "$(free)" --noPrependStageInUrl
