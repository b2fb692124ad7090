#!/bin/sh
# setup.sh DIR: prepares serverless-offline (in process) with the chat app
# of cmd/streamer/testdata/chat in DIR, a scratch folder outside the
# repository, for peerbench. The app's sendmessage builds its management
# endpoint from domainName over https, which serverless-offline does not
# serve; the copy here reads it from MANAGEMENT_ENDPOINT (the plain http
# WebSocket port, as serverless-offline documents) instead. Everything
# else is unchanged.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
chat="$here/../../../cmd/streamer/testdata/chat"
mkdir -p "$1"
cd "$1"
cp "$here/serverless.yml" "$here/run.sh" "$chat/onconnect.js" "$chat/ondisconnect.js" .
sed 's|endpoint: "https://" + event.requestContext.domainName + "/" + event.requestContext.stage,|endpoint: process.env.MANAGEMENT_ENDPOINT,|' \
  "$chat/sendmessage.mjs" > sendmessage.mjs
grep -q MANAGEMENT_ENDPOINT sendmessage.mjs
[ -f package.json ] || npm init -y >/dev/null
[ -d node_modules/serverless-offline ] || npm install --no-audit --no-fund \
  serverless@3 serverless-offline@13 @aws-sdk/client-apigatewaymanagementapi @aws-sdk/client-dynamodb
