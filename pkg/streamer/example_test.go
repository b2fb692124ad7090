package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// A sync action with a typed payload. In production the Sender is the
// connection Manager; here a Recorder shows what would be posted.
func ExampleRouter_Handle() {
	ctx := context.Background()
	st := memory.New()
	sent := &connectiontest.Recorder{}
	router := streamer.NewRouter(st, sent, streamer.WithConnectionStore(st))

	type greet struct {
		Name string `json:"name"`
	}
	router.Handle("greet", streamer.HandlerOf(func(ctx context.Context, req *streamer.Request, in greet) (any, error) {
		return map[string]string{"hello": in.Name, "from": req.Identity.UserID}, nil
	}))

	// The $connect handler stored this connection's identity.
	_ = st.Save(ctx, &store.Connection{ConnectionID: "c1", UserID: "alice", TTL: time.Now().Add(time.Hour).Unix()})
	_ = router.HandleMessage(ctx, streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"request","id":"1","action":"greet","payload":{"name":"Bob"}}`)})
	_ = router.HandleMessage(ctx, streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"request","id":"2","action":"nope"}`)})

	for _, m := range sent.Sent() {
		fmt.Println(string(m.Data))
	}
	// Output:
	// {"v":1,"type":"response","request_id":"1","data":{"from":"alice","hello":"Bob"}}
	// {"v":1,"type":"error","request_id":"2","code":"UNKNOWN_ACTION","message":"unknown action nope"}
}

// An async action: the router acknowledges and stores it, a Processor runs
// it with a progress reporter and sends the result. In one process (as in
// `streamer dev`) the two share a Queue, through which the router hands
// the processor's pool each request it stores; on Lambda the Processor
// gets them from the table's stream instead.
func ExampleRouter_HandleAsync() {
	ctx := context.Background()
	st := memory.New()
	sent := &connectiontest.Recorder{}
	queue := streamer.NewQueue(streamer.DefaultQueueSize)
	router := streamer.NewRouter(st, sent, streamer.WithConnectionStore(st), streamer.WithQueue(queue))

	type reportIn struct {
		Steps int `json:"steps"`
	}
	router.HandleAsync("report", streamer.AsyncHandlerOf(func(ctx context.Context, req *streamer.Request, in reportIn, p progress.Reporter) (any, error) {
		for i := 1; i <= in.Steps; i++ {
			// ... one step of work, honouring ctx ...
			if err := p.Report(float64(i*100/in.Steps), fmt.Sprintf("step %d", i)); err != nil {
				return nil, err
			}
		}
		return map[string]int{"steps": in.Steps}, nil
	}))

	// The pool runs in-process; Shutdown stops it.
	proc := streamer.NewProcessor(st, sent, router.Actions(),
		streamer.WithProcessorConnections(st), streamer.WithProcessorQueue(queue), streamer.WithWorkers(4))
	_ = proc.Start(ctx)
	defer proc.Shutdown(ctx)

	_ = st.Save(ctx, &store.Connection{ConnectionID: "c1", UserID: "alice", TTL: time.Now().Add(time.Hour).Unix()})
	_ = router.HandleMessage(ctx, streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"request","id":"job-1","action":"report","payload":{"steps":3}}`)})

	// Wait for the result (a client would just read its socket).
	for !hasType(sent, "complete") {
		time.Sleep(time.Millisecond)
	}
	msgs := sent.Sent()
	fmt.Println("first:", typeOf(msgs[0].Data))
	fmt.Println("last: ", typeOf(msgs[len(msgs)-1].Data))
	// Output:
	// first: ack
	// last:  complete
}

func hasType(r *connectiontest.Recorder, typ string) bool {
	for _, m := range r.Sent() {
		if typeOf(m.Data) == typ {
			return true
		}
	}
	return false
}

func typeOf(data []byte) string {
	var w wire
	_ = json.Unmarshal(data, &w)
	return w.Type
}

// Middleware wraps sync and async handlers alike; this one refuses a user
// before any handler runs.
func ExampleRouter_Use() {
	ctx := context.Background()
	st := memory.New()
	sent := &connectiontest.Recorder{}
	router := streamer.NewRouter(st, sent, streamer.WithConnectionStore(st))
	router.Use(func(next streamer.Handler) streamer.Handler {
		return streamer.HandlerFunc(func(ctx context.Context, req *streamer.Request) (any, error) {
			if req.Identity.UserID == "mallory" {
				return nil, streamer.NewClientError(protocol.CodeForbidden, "banned")
			}
			return next.ServeRequest(ctx, req)
		})
	})
	router.HandleFunc("time", func(context.Context, *streamer.Request) (any, error) { return "noon", nil })

	for _, user := range []string{"alice", "mallory"} {
		_ = st.Save(ctx, &store.Connection{ConnectionID: user, UserID: user, TTL: time.Now().Add(time.Hour).Unix()})
		_ = router.HandleMessage(ctx, streamer.Message{ConnectionID: user, Body: []byte(`{"type":"request","id":"1","action":"time"}`)})
	}
	for _, m := range sent.Sent() {
		fmt.Println(m.ConnectionID, string(m.Data))
	}
	// Output:
	// alice {"v":1,"type":"response","request_id":"1","data":"noon"}
	// mallory {"v":1,"type":"error","request_id":"1","code":"FORBIDDEN","message":"banned"}
}

// The $connect handler verifies the token and stores who is connected; the
// router trusts only that record.
func ExampleNewConnectHandler() {
	ctx := context.Background()
	st := memory.New()
	verifier, err := auth.NewVerifier(auth.Config{
		Algorithms: []string{"HS256"},
		Keys:       auth.Keys{HMACSecrets: [][]byte{[]byte("an-example-secret-of-32-bytes-min")}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	h := streamer.NewConnectHandler(st, streamer.WithVerifier(verifier))

	err = h.Connect(ctx, streamer.ConnectRequest{ConnectionID: "c1", Query: map[string]string{"token": "forged"}})
	fmt.Println("401:", errors.Is(err, streamer.ErrUnauthorized))
	_, err = st.Get(ctx, "c1")
	fmt.Println("stored:", err == nil)
	// Output:
	// 401: true
	// stored: false
}
