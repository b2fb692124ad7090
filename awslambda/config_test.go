package awslambda

import (
	"errors"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnvDefaultsAndOverrides(t *testing.T) {
	c, err := configFrom(env(map[string]string{EnvAllowAnonymous: "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionsTable != "streamer-connections" || c.RequestsTable != "streamer-requests" || c.SyncTimeout != 10*time.Second || c.MaxAttempts != 3 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = configFrom(env(map[string]string{
		EnvTablePrefix: "prod-", EnvRequestsTable: "reqs", EnvSyncTimeout: "5s", EnvMaxAttempts: "7",
		EnvJWTAlgorithms: "RS256, ES256", EnvJWKSFile: "/keys.json", EnvJWTAudience: "app",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionsTable != "prod-connections" || c.RequestsTable != "reqs" || c.SyncTimeout != 5*time.Second ||
		c.MaxAttempts != 7 || len(c.JWTAlgorithms) != 2 || c.JWTAlgorithms[1] != "ES256" || c.JWTAudience != "app" || c.AllowAnonymous {
		t.Fatalf("overrides: %+v", c)
	}
}

func TestConfigFromEnvRefusesMistakes(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"no auth decided":   {},
		"algorithms no key": {EnvJWTAlgorithms: "RS256"},
		"timeout too long":  {EnvAllowAnonymous: "1", EnvSyncTimeout: "30s"},
		"bad timeout":       {EnvAllowAnonymous: "1", EnvSyncTimeout: "soon"},
		"bad attempts":      {EnvAllowAnonymous: "1", EnvMaxAttempts: "0"},
		"bad bool":          {EnvAllowAnonymous: "maybe"},
		"negative pacing":   {EnvAllowAnonymous: "1", EnvPacingRate: "-5"},
		"bad pacing":        {EnvAllowAnonymous: "1", EnvPacingRate: "fast"},
		"bad burst":         {EnvAllowAnonymous: "1", EnvPacingBurst: "-1"},
	} {
		if _, err := configFrom(env(m)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// EnvVars is exactly what configFrom asks for, so a template checked
// against the list is checked against the code.
func TestEnvVarsIsWhatConfigFromEnvReads(t *testing.T) {
	asked := map[string]bool{}
	get := func(k string) string {
		asked[k] = true
		switch k {
		case EnvJWTAlgorithms:
			return "RS256" // reach the JWT branches too
		case EnvJWTKeyFile:
			return "/key.pem"
		}
		return ""
	}
	if _, err := configFrom(get); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, name := range EnvVars() {
		listed[name] = true
		if !asked[name] {
			t.Errorf("EnvVars lists %s, which configFrom never reads", name)
		}
	}
	for name := range asked {
		if !listed[name] {
			t.Errorf("configFrom reads %s, which EnvVars does not list", name)
		}
	}
}

// STREAMER_PACING_RATE and _BURST set the budget of a Manager built with
// Config.ManagerOptions; unset keeps the Manager's default, 0 turns
// pacing off.
func TestConfigPacing(t *testing.T) {
	for _, c := range []struct {
		env        map[string]string
		rate       float64
		burst      int
		wantOption bool
	}{
		{map[string]string{}, connection.DefaultRate, connection.DefaultBurst, false},
		{map[string]string{EnvPacingRate: "300", EnvPacingBurst: "20"}, 300, 20, true},
		{map[string]string{EnvPacingBurst: "100"}, connection.DefaultRate, 100, true},
		{map[string]string{EnvPacingRate: "0"}, 0, 0, true},
	} {
		c.env[EnvAllowAnonymous] = "true"
		cfg, err := configFrom(env(c.env))
		if err != nil {
			t.Fatal(err)
		}
		opts := cfg.ManagerOptions()
		if (len(opts) > 0) != c.wantOption {
			t.Errorf("%v: %d options", c.env, len(opts))
		}
		srv := connectiontest.NewServer()
		m := connection.NewManager(memory.New(), srv.Client(), srv.URL, opts...)
		p := m.Stats().Pacing
		if p.MaxRate != c.rate || p.Burst != c.burst {
			t.Errorf("%v: pacing %+v, want rate %v burst %d", c.env, p, c.rate, c.burst)
		}
		if err := m.Shutdown(t.Context()); err != nil {
			t.Error(err)
		}
		srv.Close()
	}
}
