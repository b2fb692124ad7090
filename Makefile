# make test installs what the tests need (dynalite, the template tests' Node
# app and the TypeScript client's dev dependencies from their pinned npm
# lockfiles; Debian's chromium when missing), starts a DynamoDB-API server on
# loopback, runs every check, and stops the server, also when a test fails;
# then the client's Node and browser tests.

GO ?= go
# FUZZTIME is a number of executions, not a duration: with a duration, Go
# 1.26's fuzzing coordinator can report its own -fuzztime deadline as a
# failure ("context deadline exceeded", no failing input) when the deadline
# fires while a worker is busy, which a loaded machine makes likely. A count
# has no deadline to race, and load slows the run instead of failing it.
# Hangs are still caught: a fuzz worker panics on any input that runs 10 s,
# and FUZZTIMEOUT bounds each target's whole run.
FUZZTIME ?= 10000x
FUZZTIMEOUT ?= 5m

.PHONY: test check fmt-check vet tools test-deps test-go fuzz bench bench-local dev clean test-js js-tools js-build chromium

test: check tools test-deps
	./scripts/with-dynalite.sh $(MAKE) --no-print-directory test-go fuzz
	$(MAKE) --no-print-directory test-js

check: fmt-check vet

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# npm ci installs exactly the lockfile; it reruns only when the lockfile changes.
tools: .tools/node_modules/.package-lock.json

.tools/node_modules/.package-lock.json: .tools/package-lock.json .tools/package.json
	@command -v node >/dev/null || { echo "Node.js >= 20 is required (for dynalite); install it first." >&2; exit 1; }
	cd .tools && npm ci --no-audit --no-fund
	@touch $@

# The Node.js sample app of `streamer dev --template`'s tests, from its
# committed lockfile.
CHAT_APP := cmd/streamer/testdata/chat
# The public sample apps of runtime/stack's corpus tests run on the AWS SDK
# v3 that Lambda bundles, installed beside them from its lockfile; the one
# under sdkv2 ships the SDK v2 in its package.json, installed there as
# `sam build` would.
CORPUS := runtime/stack/testdata/corpus
# The TypeScript app of runtime/stack's esbuild tests: esbuild and the
# client its bundle carries.
ESBUILD_APP := runtime/stack/testdata/esbuildapp
test-deps: $(CHAT_APP)/node_modules/.package-lock.json $(CORPUS)/node_modules/.package-lock.json $(CORPUS)/sdkv2/node_modules/.package-lock.json $(ESBUILD_APP)/node_modules/.package-lock.json

$(CHAT_APP)/node_modules/.package-lock.json: $(CHAT_APP)/package-lock.json $(CHAT_APP)/package.json
	cd $(CHAT_APP) && npm ci --no-audit --no-fund
	@touch $@

$(CORPUS)/node_modules/.package-lock.json: $(CORPUS)/package-lock.json $(CORPUS)/package.json
	cd $(CORPUS) && npm ci --no-audit --no-fund
	@touch $@

$(CORPUS)/sdkv2/node_modules/.package-lock.json: $(CORPUS)/sdkv2/package-lock.json $(CORPUS)/sdkv2/package.json
	cd $(CORPUS)/sdkv2 && npm ci --no-audit --no-fund
	@touch $@

$(ESBUILD_APP)/node_modules/.package-lock.json: $(ESBUILD_APP)/package-lock.json $(ESBUILD_APP)/package.json
	cd $(ESBUILD_APP) && npm ci --no-audit --no-fund
	@touch $@

test-go:
	$(GO) test -race -count=1 ./...

# Each fuzz target runs briefly; go test accepts one -fuzz target per run.
FUZZ_TARGETS ?= \
	./pkg/protocol:FuzzParseInbound \
	./pkg/streamer:FuzzHandleMessage \
	./runtime/local:FuzzRouteKey \
	./runtime/local:FuzzSignature \
	./pkg/auth:FuzzVerify \
	./pkg/auth:FuzzParseJWKS \
	./pkg/connection:FuzzEncode \
	./pkg/store/dynamo:FuzzDecodeCursor \
	./pkg/store/dynamo:FuzzDecodeSweepCursor \
	./pkg/store/memory:FuzzListCursor \
	./pkg/channel:FuzzChannelMessage
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -timeout=$(FUZZTIMEOUT) $$pkg; \
	done

bench:
	./scripts/with-dynalite.sh $(GO) test -run='^$$' -bench=. -benchmem ./...

dev:
	$(GO) run ./cmd/streamer dev

# The 10,000-connection load benchmark of the local runtime (docs/PERFORMANCE.md).
bench-local:
	$(GO) run ./cmd/streamer bench --connections 10000 --check

clean:
	rm -rf .tools/node_modules $(CHAT_APP)/node_modules $(CORPUS)/node_modules $(CORPUS)/sdkv2/node_modules clients/js/node_modules clients/js/dist clients/js/test-results

# The TypeScript client (clients/js): its public types checked by tsc, node
# --test against a real `streamer dev`, and the demo page and dev console
# in headless Chromium (Debian's; playwright-core downloads no browser).
# Screenshots land in clients/js/test-results/ (gitignored). Test files run
# in parallel: each starts its own streamer dev on a free port.
JS := clients/js
test-js: js-tools chromium
	$(GO) build -o $(JS)/test-results/bin/streamer ./cmd/streamer
	cd $(JS) && node scripts/build.mjs --check
	cd $(JS) && node node_modules/typescript/bin/tsc -p test/types/tsconfig.json
	cd $(JS) && STREAMER_BIN=$(CURDIR)/$(JS)/test-results/bin/streamer node --test --test-concurrency=4 test/*.test.mjs

js-tools: $(JS)/node_modules/.package-lock.json

$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json $(JS)/package.json
	@command -v node >/dev/null || { echo "Node.js >= 20 is required (for clients/js); install it first." >&2; exit 1; }
	cd $(JS) && npm ci --no-audit --no-fund
	@touch $@

chromium:
	@command -v chromium >/dev/null || apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }

# Rebuilds the client and the copy `streamer dev` embeds; commit both the
# sources and cmd/streamer/internal/devui/assets/client.
js-build: js-tools
	cd $(JS) && node scripts/build.mjs
