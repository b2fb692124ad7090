package streamer

import (
	"context"
	"fmt"
	"sync"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
)

// Actions is a registry of actions and middleware. A Router answers its
// sync actions and queues its async ones; a Processor runs the async ones.
// Both share one registry: the Router's (Router.Actions), or one made with
// NewActions and given to both (WithActions, NewProcessor). Register
// actions before serving; an Actions is safe for concurrent use.
type Actions struct {
	mu         sync.RWMutex
	actions    map[string]*action
	middleware []Middleware
}

// NewActions returns an empty registry.
func NewActions() *Actions {
	return &Actions{actions: make(map[string]*action)}
}

// Handle registers a sync action. It panics if the action is already
// registered or h is nil, like http.ServeMux: both are programming errors.
func (r *Actions) Handle(name string, h Handler, opts ...ActionOption) {
	if h == nil {
		panic("streamer: nil handler for action " + name)
	}
	r.register(&action{name: name, sync: h}, opts)
}

// HandleFunc registers a sync action implemented by a function.
func (r *Actions) HandleFunc(name string, fn func(ctx context.Context, req *Request) (any, error), opts ...ActionOption) {
	r.Handle(name, HandlerFunc(fn), opts...)
}

// HandleAsync registers an async action: a router acknowledges it and a
// Processor runs h.
func (r *Actions) HandleAsync(name string, h AsyncHandler, opts ...ActionOption) {
	if h == nil {
		panic("streamer: nil async handler for action " + name)
	}
	a := &action{name: name, async: h}
	if c, ok := h.(payloadChecker); ok {
		a.checker = c
	}
	r.register(a, opts)
}

// HandleAsyncFunc registers an async action implemented by a function.
func (r *Actions) HandleAsyncFunc(name string, fn func(ctx context.Context, req *Request, p progress.Reporter) (any, error), opts ...ActionOption) {
	r.HandleAsync(name, AsyncHandlerFunc(fn), opts...)
}

func (r *Actions) register(a *action, opts []ActionOption) {
	if a.name == "" || len(a.name) > protocol.MaxIDLength {
		panic(fmt.Sprintf("streamer: invalid action name %q", a.name))
	}
	for _, opt := range opts {
		if opt != nil {
			opt(a)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.actions[a.name]; dup {
		panic("streamer: action registered twice: " + a.name)
	}
	r.actions[a.name] = a
}

// Use appends middleware. The first added is the outermost. Middleware
// wraps sync and async handlers alike, including those registered before.
func (r *Actions) Use(mw ...Middleware) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range mw {
		if m != nil {
			r.middleware = append(r.middleware, m)
		}
	}
}

// lookup returns the action and the middleware chain to run it in.
func (r *Actions) lookup(name string) (*action, []Middleware) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.actions[name], r.middleware
}
