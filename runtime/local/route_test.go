package local

import (
	"encoding/json"
	"testing"
)

// FuzzRouteKey feeds arbitrary message bodies to route selection: it
// never panics, a body that is not JSON (trailing data included) never
// routes, and a JSON object whose action is a string routes by that
// string.
func FuzzRouteKey(f *testing.F) {
	for _, s := range []string{`{"action":"echo"}`, `{"action":1e3}`, `{"action":{"a":[1,2]}}`, `not json`, `{"action":null}`, `[]`, `"x"`, ``,
		`{"action":"echo"} trailing`, `{"action":"echo"}{}`, "{\"action\":\"echo\"}\n"} {
		f.Add([]byte(s))
	}
	sel, err := parseRouteSelection("$request.body.action")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, ok := sel.routeKey(body)
		if !json.Valid(body) && ok {
			// Not JSON (trailing data included): API Gateway routes it to $default.
			t.Errorf("%q is not JSON but routed to %q", body, key)
		}
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return
		}
		if s, isString := m["action"].(string); isString && (!ok || key != s) {
			t.Errorf("%q routed to %q (%v), want %q", body, key, ok, s)
		}
	})
}

func TestParseRouteSelection(t *testing.T) {
	for expr, want := range map[string][]string{
		"$request.body.action":    {"action"},
		"${request.body.action}":  {"action"},
		"$request.body.meta.kind": {"meta", "kind"},
		"${request.body.a.b.c}":   {"a", "b", "c"},
	} {
		sel, err := parseRouteSelection(expr)
		if err != nil || len(sel.path) != len(want) {
			t.Errorf("%s: %v %v", expr, sel.path, err)
			continue
		}
		for i := range want {
			if sel.path[i] != want[i] {
				t.Errorf("%s: path %v, want %v", expr, sel.path, want)
			}
		}
	}
}
