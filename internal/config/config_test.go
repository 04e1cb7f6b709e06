package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata/internal/config"
	"github.com/stretchr/testify/require"
)

type settings struct {
	addr  string
	grace time.Duration
	n     int
	roles []string
	cfg   string
}

func newFlags() (*pflag.FlagSet, *settings) {
	s := &settings{}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.StringVar(&s.cfg, "config", "", "file")
	fs.StringVar(&s.addr, "http-addr", ":8080", "addr")
	fs.DurationVar(&s.grace, "shutdown-grace", 15*time.Second, "grace")
	fs.IntVar(&s.n, "shards", 256, "shards")
	fs.StringSliceVar(&s.roles, "roles", []string{"all"}, "roles")
	return fs, s
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "strata.yaml")
	require.NoError(t, os.WriteFile(file, []byte("http-addr: ':9000'\nshutdown-grace: 3s\nshards: 64\nroles: [auth, worker]\n"), 0o600))

	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want settings
	}{
		"defaults": {want: settings{addr: ":8080", grace: 15 * time.Second, n: 256, roles: []string{"all"}}},
		"file": {args: []string{"--config", file},
			want: settings{addr: ":9000", grace: 3 * time.Second, n: 64, roles: []string{"auth", "worker"}, cfg: file}},
		"env over file": {args: []string{"--config", file}, env: map[string]string{"STRATA_HTTP_ADDR": ":7000", "STRATA_ROLES": "auth"},
			want: settings{addr: ":7000", grace: 3 * time.Second, n: 64, roles: []string{"auth"}, cfg: file}},
		"flag over env": {args: []string{"--config", file, "--http-addr", ":6000"}, env: map[string]string{"STRATA_HTTP_ADDR": ":7000"},
			want: settings{addr: ":6000", grace: 3 * time.Second, n: 64, roles: []string{"auth", "worker"}, cfg: file}},
		"config from env": {env: map[string]string{"STRATA_CONFIG": file},
			want: settings{addr: ":9000", grace: 3 * time.Second, n: 64, roles: []string{"auth", "worker"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fs, s := newFlags()
			require.NoError(t, fs.Parse(tc.args))
			require.NoError(t, config.Apply(fs, env(tc.env)))
			require.Equal(t, tc.want, *s)
		})
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("http-adr: ':1'\n"), 0o600))
	malformed := filepath.Join(dir, "malformed.yaml")
	require.NoError(t, os.WriteFile(malformed, []byte("shards: lots\n"), 0o600))
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"unknown key":    {args: []string{"--config", bad}, want: "unknown settings http-adr"},
		"bad env value":  {env: map[string]string{"STRATA_SHUTDOWN_GRACE": "soon"}, want: "shutdown-grace (from STRATA_SHUTDOWN_GRACE)"},
		"bad file value": {args: []string{"--config", malformed}, want: "shards (from " + malformed},
		"missing file":   {args: []string{"--config", filepath.Join(dir, "nope.yaml")}, want: "config:"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fs, _ := newFlags()
			require.NoError(t, fs.Parse(tc.args))
			err := config.Apply(fs, env(tc.env))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMarkdownListsEveryFlag(t *testing.T) {
	t.Parallel()
	fs, _ := newFlags()
	md := config.Markdown(fs)
	for _, f := range []string{"`--http-addr` | `STRATA_HTTP_ADDR` | `:8080`", "`--shards` | `STRATA_SHARDS` | `256`"} {
		require.Contains(t, md, f)
	}
}
