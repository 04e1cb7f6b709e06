package webhook_test

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata/internal/config"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stretchr/testify/require"
)

func TestConfigFlagsAndEnvironment(t *testing.T) {
	t.Parallel()
	var c webhook.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, webhook.Config{Timeout: 10 * time.Second, MaxAge: 72 * time.Hour}, c, "private addresses refused by default")
	require.NoError(t, c.Validate())

	// STRATA_WEBHOOKS_ALLOW_PRIVATE comes from cmd/strata's layering.
	require.Equal(t, "STRATA_WEBHOOKS_ALLOW_PRIVATE", config.EnvName("webhooks-allow-private"))
	env := map[string]string{"STRATA_WEBHOOKS_ALLOW_PRIVATE": "true", "STRATA_WEBHOOKS_TIMEOUT": "3s"}
	require.NoError(t, config.Apply(fs, func(k string) string { return env[k] }))
	require.True(t, c.AllowPrivate)
	require.Equal(t, 3*time.Second, c.Timeout)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg  webhook.Config
		want string
	}{
		"defaults":        {webhook.Config{Timeout: 10 * time.Second, MaxAge: 72 * time.Hour}, ""},
		"timeout too low": {webhook.Config{Timeout: 500 * time.Millisecond, MaxAge: time.Hour}, "webhooks-timeout"},
		"timeout too big": {webhook.Config{Timeout: 2 * time.Minute, MaxAge: time.Hour}, "webhooks-timeout"},
		"max age too low": {webhook.Config{Timeout: time.Second, MaxAge: time.Second}, "webhooks-max-age"},
		"max age too big": {webhook.Config{Timeout: time.Second, MaxAge: 31 * 24 * time.Hour}, "webhooks-max-age"},
	}
	for name, tc := range tests {
		err := tc.cfg.Validate()
		if tc.want == "" {
			require.NoError(t, err, name)
			continue
		}
		require.ErrorContains(t, err, tc.want, name)
	}
}
