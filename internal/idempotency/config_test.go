package idempotency_test

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stretchr/testify/require"
)

func TestConfigFlags(t *testing.T) {
	t.Parallel()
	var c idempotency.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.Equal(t, idempotency.DefaultTTL, c.TTL)
	require.NoError(t, c.Validate())
	require.Equal(t, idempotency.DefaultLockTimeout, c.LockTimeout)
	require.NoError(t, fs.Parse([]string{"--idempotency-ttl=6h", "--idempotency-lock-timeout=2s"}))
	require.Equal(t, 6*time.Hour, c.TTL)
	require.Equal(t, 2*time.Second, c.LockTimeout)
	require.NoError(t, c.Validate())
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	require.Equal(t, []string{"idempotency-lock-timeout", "idempotency-ttl"}, names, "the TTL and the lock timeout are the public settings")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     idempotency.Config
		wantErr string
	}{
		{name: "defaults", cfg: idempotency.Config{TTL: idempotency.DefaultTTL}},
		{name: "all set", cfg: idempotency.Config{TTL: time.Hour, LockTimeout: 30 * time.Second, MaxBody: 1 << 10, MaxStoredBody: 1 << 10}},
		{name: "no ttl", cfg: idempotency.Config{}, wantErr: "idempotency-ttl must be at least 1m"},
		{name: "short ttl", cfg: idempotency.Config{TTL: 30 * time.Second}, wantErr: "idempotency-ttl must be at least 1m"},
		{name: "ttl within the default lock", cfg: idempotency.Config{TTL: time.Minute}, wantErr: "must exceed the lock timeout"},
		{name: "ttl within the lock", cfg: idempotency.Config{TTL: time.Hour, LockTimeout: 2 * time.Hour}, wantErr: "must exceed the lock timeout"},
		{name: "short lock", cfg: idempotency.Config{TTL: time.Hour, LockTimeout: time.Millisecond}, wantErr: "lock timeout must be at least 1s"},
		{name: "negative lock", cfg: idempotency.Config{TTL: time.Hour, LockTimeout: -time.Second}, wantErr: "lock timeout"},
		{name: "negative max body", cfg: idempotency.Config{TTL: time.Hour, MaxBody: -1}, wantErr: "max body"},
		{name: "negative max stored body", cfg: idempotency.Config{TTL: time.Hour, MaxStoredBody: -1}, wantErr: "max stored body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
