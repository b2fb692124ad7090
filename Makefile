# make test installs what the tests need (dynalite from the pinned npm
# lockfile), starts a DynamoDB-API server on loopback, runs every check, and
# stops the server, also when a test fails.

GO ?= go
FUZZTIME ?= 5s

.PHONY: test check fmt-check vet tools test-deps test-go fuzz bench bench-local dev clean

test: check tools test-deps
	./scripts/with-dynalite.sh $(MAKE) --no-print-directory test-go fuzz

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
test-deps: $(CHAT_APP)/node_modules/.package-lock.json

$(CHAT_APP)/node_modules/.package-lock.json: $(CHAT_APP)/package-lock.json $(CHAT_APP)/package.json
	cd $(CHAT_APP) && npm ci --no-audit --no-fund
	@touch $@

test-go:
	$(GO) test -race -count=1 ./...

# Each fuzz target runs briefly; go test accepts one -fuzz target per run.
FUZZ_TARGETS ?= \
	./pkg/streamer:FuzzParseInbound \
	./pkg/streamer:FuzzHandleMessage \
	./runtime/local:FuzzRouteKey \
	./pkg/auth:FuzzVerify \
	./pkg/connection:FuzzEncode \
	./pkg/store/dynamo:FuzzDecodeCursor \
	./pkg/store/dynamo:FuzzDecodeSweepCursor \
	./pkg/store/memory:FuzzListCursor
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

bench:
	./scripts/with-dynalite.sh $(GO) test -run='^$$' -bench=. -benchmem ./...

dev:
	$(GO) run ./cmd/streamer dev

# The 10,000-connection load benchmark of the local runtime (docs/PERFORMANCE.md).
bench-local:
	$(GO) run ./cmd/streamer bench --connections 10000 --check

clean:
	rm -rf .tools/node_modules $(CHAT_APP)/node_modules
