package devui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/runtime/local"
)

//go:embed assets
var assets embed.FS

// ErrInvalidConfig is returned by New for a Config it cannot serve.
var ErrInvalidConfig = errors.New("devui: invalid config")

// Paths the UI serves; everything else goes to the gateway.
const (
	PathPage      = "/"
	PathConsole   = "/_console"
	PathAssets    = "/_ui/"
	pathAPIState  = "/_console/api/state"
	pathAPIConn   = "/_console/api/connections/"
	pathAPIRoutes = "/_console/api/routes/"
	pathAPICalls  = "/_console/api/calls/"
	// pathFavicon is where browsers look for an icon unasked. The pages
	// name theirs (an asset); this path answers 204 rather than pass to
	// the gateway, which would log a refused request and answer 403.
	pathFavicon = "/favicon.ico"
)

// consoleHeader must be on the console's POST and DELETE calls. A page of
// another origin cannot set it without a CORS preflight, which this server
// never grants, so a web page the developer happens to visit cannot drive
// the management API of their loopback runtime.
const consoleHeader = "X-Streamer-Console"

// Config configures a UI.
type Config struct {
	// Stage is the gateway's stage, the first path segment of the
	// WebSocket URL. Empty means local.DefaultStage.
	Stage string
	// ManagementEndpoint is the gateway's @connections base endpoint,
	// http://ADDR/{stage}. Required: the console's buttons call it.
	ManagementEndpoint string
	// Connections, when set, adds each open connection's user and tenant
	// (the app's stored identity) to the console.
	Connections store.ConnectionStore
	// AuthOn tells the page that the runtime wants a token.
	AuthOn bool
	// History is how many route invocations, @connections calls and
	// closed connections the console keeps. Zero means DefaultHistory.
	History int
	// HTTPClient makes the management calls. Nil means a client with a
	// 10 s timeout.
	HTTPClient *http.Client
	// Logger receives the UI's logs. Nil discards them.
	Logger *slog.Logger
}

// Lister is what the console needs of the gateway: *local.Gateway.
type Lister interface {
	Connections() []local.ConnectionInfo
}

var _ Lister = (*local.Gateway)(nil)

// UI serves the demo page and the dev console. It is the gateway's
// Observer (pass it as local.Config.Observer) and reads the open
// connections from the Lister given to Attach.
type UI struct {
	cfg    Config
	rec    *recorder
	lister atomic.Pointer[Lister]
	page   []byte
	static http.Handler
	client *http.Client
	log    *slog.Logger

	// idMu guards ids: each open connection's stored identity, read once
	// (it never changes while the connection lives), so a console polling
	// every second costs no store read per connection per poll.
	idMu sync.Mutex
	ids  map[string]identity
}

type identity struct{ user, tenant string }

var _ local.Observer = (*UI)(nil)

// New checks cfg and returns a UI. Attach the gateway before serving.
func New(cfg Config) (*UI, error) {
	if cfg.Stage == "" {
		cfg.Stage = local.DefaultStage
	}
	if u, err := url.Parse(cfg.ManagementEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: ManagementEndpoint %q is not an http(s) URL", ErrInvalidConfig, cfg.ManagementEndpoint)
	}
	if cfg.History < 0 {
		return nil, fmt.Errorf("%w: negative History", ErrInvalidConfig)
	}
	if cfg.History == 0 {
		cfg.History = DefaultHistory
	}
	ui := &UI{cfg: cfg, rec: newRecorder(cfg.History), client: cfg.HTTPClient, log: cfg.Logger, ids: make(map[string]identity)}
	if ui.client == nil {
		ui.client = &http.Client{Timeout: 10 * time.Second}
	}
	if ui.log == nil {
		ui.log = slog.New(slog.DiscardHandler)
	}
	page, err := renderPage(cfg)
	if err != nil {
		return nil, err
	}
	ui.page = page
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("devui: assets: %w", err)
	}
	ui.static = http.StripPrefix(strings.TrimSuffix(PathAssets, "/"), http.FileServerFS(sub))
	return ui, nil
}

// renderPage fills the demo page's settings in: the stage, so the page
// builds the WebSocket URL from its own address, and whether auth is on.
func renderPage(cfg Config) ([]byte, error) {
	t, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("devui: page: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct {
		Stage  string
		AuthOn bool
	}{cfg.Stage, cfg.AuthOn}); err != nil {
		return nil, fmt.Errorf("devui: page: %w", err)
	}
	return b.Bytes(), nil
}

// Attach names the gateway whose open connections the console lists.
func (ui *UI) Attach(l Lister) { ui.lister.Store(&l) }

// Handler serves the page, its assets and the console, and passes every
// other request (the WebSocket at /{stage}, @connections) to gateway.
func (ui *UI) Handler(gateway http.Handler) http.Handler {
	stage := "/" + ui.cfg.Stage
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == stage || strings.HasPrefix(p, stage+"/"):
			gateway.ServeHTTP(w, r)
		case p == PathPage:
			ui.servePage(w, r)
		case strings.HasPrefix(p, PathAssets):
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			ui.static.ServeHTTP(w, r)
		case p == PathConsole || p == PathConsole+"/":
			ui.serveAsset(w, r, "assets/console.html", "text/html; charset=utf-8")
		case p == pathAPIState:
			ui.serveState(w, r)
		case strings.HasPrefix(p, pathAPIConn):
			ui.serveManage(w, r)
		case strings.HasPrefix(p, pathAPIRoutes):
			ui.serveDetail(w, r, "routes", strings.TrimPrefix(p, pathAPIRoutes))
		case strings.HasPrefix(p, pathAPICalls):
			ui.serveDetail(w, r, "calls", strings.TrimPrefix(p, pathAPICalls))
		case p == pathFavicon:
			w.Header().Set("Cache-Control", "max-age=86400")
			w.WriteHeader(http.StatusNoContent)
		default:
			gateway.ServeHTTP(w, r)
		}
	})
}

func (ui *UI) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(ui.page)
}

func (ui *UI) serveAsset(w http.ResponseWriter, r *http.Request, name, contentType string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := assets.ReadFile(name)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// Connection is one open connection as the console shows it.
type Connection struct {
	ConnectionID string    `json:"connectionId"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	// UserID and TenantID are the app's stored identity; empty when the
	// UI has no store or the record is gone.
	UserID   string `json:"userId,omitempty"`
	TenantID string `json:"tenantId,omitempty"`
}

// MaxListedConnections bounds the connections one State lists (oldest
// first), so a console left open during `streamer bench` stays usable;
// State.Open still counts them all.
const MaxListedConnections = 500

// State is what the console shows: GET /_console/api/state.
type State struct {
	Now   time.Time `json:"now"`
	Stage string    `json:"stage"`
	// Open counts the open connections; Connections lists at most
	// MaxListedConnections of them.
	Open        int          `json:"open"`
	Connections []Connection `json:"connections"`
	Routes      []Route      `json:"routes"`
	Management  []Call       `json:"management"`
	Closed      []Closed     `json:"closed"`
	Totals      Totals       `json:"totals"`
	// Limits is what --quotas and --faults did, when either is on.
	Limits *local.LimitStats `json:"limits,omitempty"`
}

// State returns the console's view now.
func (ui *UI) State(ctx context.Context) State {
	routes, calls, closed, totals := ui.rec.snapshot()
	st := State{Now: time.Now(), Stage: ui.cfg.Stage, Connections: []Connection{}, Routes: routes, Management: calls, Closed: closed, Totals: totals}
	if l := ui.lister.Load(); l != nil {
		if ls, ok := (*l).(interface{ LimitStats() local.LimitStats }); ok {
			if v := ls.LimitStats(); v.Quotas != nil || v.Faults != nil {
				st.Limits = &v
			}
		}
		open := (*l).Connections()
		st.Open = len(open)
		if len(open) > MaxListedConnections {
			open = open[:MaxListedConnections]
		}
		for _, c := range open {
			v := Connection{ConnectionID: c.ConnectionID, SourceIP: c.SourceIP, UserAgent: c.UserAgent, ConnectedAt: c.ConnectedAt, LastActiveAt: c.LastActiveAt}
			if id, ok := ui.identity(ctx, c.ConnectionID); ok {
				v.UserID, v.TenantID = id.user, id.tenant
			}
			st.Connections = append(st.Connections, v)
		}
		ui.pruneIdentities(st.Connections)
	}
	return st
}

// identity is the stored user and tenant of an open connection, from the
// cache or the store.
func (ui *UI) identity(ctx context.Context, connectionID string) (identity, bool) {
	if ui.cfg.Connections == nil {
		return identity{}, false
	}
	ui.idMu.Lock()
	id, ok := ui.ids[connectionID]
	ui.idMu.Unlock()
	if ok {
		return id, true
	}
	rec, err := ui.cfg.Connections.Get(ctx, connectionID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			ui.log.Debug("devui: read connection", "connection_id", connectionID, "err", err)
		}
		return identity{}, false
	}
	id = identity{user: rec.UserID, tenant: rec.TenantID}
	ui.idMu.Lock()
	ui.ids[connectionID] = id
	ui.idMu.Unlock()
	return id, true
}

// pruneIdentities drops cached identities of connections no longer open:
// a read racing a close can cache one after ConnectionClosed removed it.
func (ui *UI) pruneIdentities(open []Connection) {
	ui.idMu.Lock()
	defer ui.idMu.Unlock()
	if len(ui.ids) <= len(open) {
		return
	}
	keep := make(map[string]bool, len(open))
	for _, c := range open {
		keep[c.ConnectionID] = true
	}
	for id := range ui.ids {
		if !keep[id] {
			delete(ui.ids, id)
		}
	}
}

func (ui *UI) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, ui.State(r.Context()))
}

// ManageResult is the console's answer to a post or disconnect: what the
// management API answered.
type ManageResult struct {
	Status    int    `json:"status"`
	ErrorType string `json:"errorType,omitempty"`
}

// serveManage is POST (post the body to the connection) and DELETE
// (disconnect it) on /_console/api/connections/{id}, each one real
// request to the gateway's management API.
func (ui *UI) serveManage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodDelete {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get(consoleHeader) == "" || !sameOrigin(r) {
		http.Error(w, "forbidden: console calls come from the console page", http.StatusForbidden)
		return
	}
	id, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), pathAPIConn))
	if err != nil || id == "" {
		http.Error(w, "bad connection id", http.StatusBadRequest)
		return
	}
	var body io.Reader
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, local.MaxMessageBytes+1))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		// Over the limit is passed on: the management API's 413 is what
		// the console should show.
		body = bytes.NewReader(b)
	}
	target := strings.TrimSuffix(ui.cfg.ManagementEndpoint, "/") + "/@connections/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, body)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	resp, err := ui.client.Do(req)
	if err != nil {
		ui.log.Warn("devui: management call", "method", r.Method, "connection_id", id, "err", err)
		http.Error(w, "management API unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	writeJSON(w, http.StatusOK, ManageResult{Status: resp.StatusCode, ErrorType: resp.Header.Get("X-Amzn-Errortype")})
}

// sameOrigin accepts requests without Origin (curl) and those whose Origin
// is this server.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ConnectionOpened implements local.Observer.
func (ui *UI) ConnectionOpened(c local.ConnectionInfo) { ui.rec.ConnectionOpened(c) }

// ConnectionClosed implements local.Observer.
func (ui *UI) ConnectionClosed(c local.ConnectionInfo, code int, reason string) {
	ui.rec.ConnectionClosed(c, code, reason)
	ui.idMu.Lock()
	delete(ui.ids, c.ConnectionID)
	ui.idMu.Unlock()
}

// RouteInvoked implements local.Observer.
func (ui *UI) RouteInvoked(ri local.RouteInvocation) { ui.rec.RouteInvoked(ri) }

// ManagementCalled implements local.Observer.
func (ui *UI) ManagementCalled(mc local.ManagementCall) { ui.rec.ManagementCalled(mc) }
