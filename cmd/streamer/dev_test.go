package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestParseDevFlags(t *testing.T) {
	o, err := parseDevFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || o.stage != "dev" || o.routeSelection != "$request.body.action" ||
		o.idleTimeout != 10*time.Minute || o.maxLifetime != 2*time.Hour || o.allowedOrigins != nil || o.logLevel != slog.LevelInfo {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseDevFlags([]string{"--addr", ":0", "--stage", "prod", "--route-selection", "$request.body.meta.kind",
		"--idle-timeout", "5s", "--max-lifetime", "1m", "--allowed-origins", "app.example.com, localhost:*", "--log-level", "debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != ":0" || o.stage != "prod" || o.routeSelection != "$request.body.meta.kind" || o.idleTimeout != 5*time.Second ||
		o.maxLifetime != time.Minute || len(o.allowedOrigins) != 2 || o.allowedOrigins[1] != "localhost:*" || o.logLevel != slog.LevelDebug {
		t.Errorf("parsed %+v", o)
	}
	for _, args := range [][]string{{"--log-level", "loud"}, {"--idle-timeout", "0s"}, {"--bogus"}, {"extra"}} {
		var u usageError
		if _, err := parseDevFlags(args, io.Discard); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if code := run(context.Background(), []string{"dev", "--route-selection", "$request.header.x", "--addr", "127.0.0.1:0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad route selection: exit %d, want 2", code)
	}
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// buildBinary compiles the streamer command once for the tests that run it
// as a process.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "streamer-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "streamer")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestDevEndToEnd runs `streamer dev` as a process: a client connects and
// asks whoami, the real SDK client posts to it, GETs it and DELETEs it,
// and SIGTERM closes the remaining sockets with 1001 and exits 0.
func TestDevEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	t.Run("memory", func(t *testing.T) { devEndToEnd(t, bin) })
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := os.Getenv("STREAMER_DYNAMODB_ENDPOINT")
		if endpoint == "" {
			if os.Getenv("STREAMER_REQUIRE_DYNAMODB") == "1" {
				t.Fatal("STREAMER_REQUIRE_DYNAMODB=1 but STREAMER_DYNAMODB_ENDPOINT is empty")
			}
			t.Skip("STREAMER_DYNAMODB_ENDPOINT not set (make test sets it)")
		}
		// A prefix of its own, so the tables are this run's.
		prefix := "devtest" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
		devEndToEnd(t, bin, "--dynamodb-endpoint", endpoint, "--table-prefix", prefix)
	})
}

func devEndToEnd(t *testing.T, bin string, extra ...string) {
	cmd := exec.Command(bin, append([]string{"dev", "--addr", "127.0.0.1:0", "--log-level", "debug"}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("streamer dev stderr:\n%s", stderr.String())
		}
	})

	// Parse the two URLs it prints.
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	var wsURL, endpoint string
	timeout := time.After(20 * time.Second)
	for wsURL == "" || endpoint == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("streamer dev exited before printing its URLs")
			}
			if v, ok := strings.CutPrefix(l, "WebSocket URL:"); ok {
				wsURL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "Management endpoint:"); ok {
				endpoint = strings.TrimSpace(v)
			}
		case <-timeout:
			t.Fatal("no URLs printed within 20 s")
		}
	}
	if !strings.HasPrefix(wsURL, "ws://127.0.0.1:") || !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("urls %q %q", wsURL, endpoint)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"request","id":"1","action":"whoami"}`)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var resp streamer.Response
	var who demo.Identity
	if err := json.Unmarshal(b, &resp); err != nil || resp.Type != streamer.TypeResponse || resp.RequestID != "1" {
		t.Fatalf("whoami reply %s (%v)", b, err)
	}
	if err := json.Unmarshal(resp.Data, &who); err != nil || who.UserID != "anonymous" || who.TenantID != "default" || who.ConnectionID == "" {
		t.Fatalf("whoami data %s (%v)", resp.Data, err)
	}

	api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
		Retryer:      aws.NopRetryer{},
	})
	id := aws.String(who.ConnectionID)
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: []byte("from the SDK")}); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "from the SDK" {
		t.Fatalf("read %q, %v", b, err)
	}
	got, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id})
	if err != nil || got.ConnectedAt == nil || aws.ToString(got.Identity.SourceIp) != "127.0.0.1" {
		t.Fatalf("GetConnection %+v, %v", got, err)
	}
	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: id}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after DELETE the client read %v, want close 1000", err)
	}
	var gone *types.GoneException
	if _, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id}); !errors.As(err, &gone) {
		t.Fatalf("GetConnection after DELETE: %v, want GoneException", err)
	}

	// A second client is open when SIGTERM arrives.
	c2, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	closed := make(chan error, 1)
	go func() {
		_, _, err := c2.Read(ctx)
		closed <- err
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("on SIGTERM the client read %v, want close 1001", err)
	}
	for range lines {
	}
	if err := <-exited; err != nil {
		t.Errorf("streamer dev exited with %v, want 0", err)
	}
	if !strings.Contains(stderr.String(), "code=1001") {
		t.Errorf("no $disconnect with 1001 logged:\n%s", stderr.String())
	}
}
