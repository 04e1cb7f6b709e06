package main

import (
	"bytes"
	"flag"
	"github.com/stratadev/strata/internal/content"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stratadev/strata/internal/gateway"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/observability"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestOpenAPIMatchesRoutes fails when a served route is undocumented in
// api/openapi.yaml or a documented route is not served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../api/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.1"), "OpenAPI 3.1")
	var documented []string
	for path, ops := range doc.Paths {
		for method, v := range ops {
			op, ok := v.(map[string]any)
			if !ok || !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, method) {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
			require.NotEmpty(t, op["operationId"], "%s %s has an operationId", method, path)
		}
	}

	var cfg settings
	fs := newFlagSet()
	cfg.registerFlags(fs)
	require.NoError(t, fs.Parse(nil))
	st := &storage{router: sqldbtest.Open(t), masterKey: bytes.Repeat([]byte{1}, 32)}
	svc, _, err := st.authService(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	all := map[string]bool{}
	for _, r := range knownRoles {
		all[r] = true
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	contentSvc, err := st.contentService(cfg.content, cfg.delivery, nil, content.NoEntitlements{}, content.Caches{}, discard, nil)
	require.NoError(t, err)
	paymentsSvc, err := st.paymentsService(cfg.payments, cfg.cardNetwork, contentCatalog{contentSvc}, discard, nil)
	require.NoError(t, err)
	served := newMux(all, observability.NewProbes(), observability.NewMetrics(), svc, contentSvc, paymentsSvc, webhook.NewService(webhook.Deps{Router: st.router}), nil, httpx.RequireInternal("token"), false).Patterns()

	slices.Sort(documented)
	slices.Sort(served)
	require.Equal(t, served, documented, "served routes (left) and api/openapi.yaml (right) differ")
}

var update = flag.Bool("update", false, "rewrite the generated part of docs/configuration.md")

// TestConfigurationDocIsCurrent fails when docs/configuration.md does not
// list exactly the settings the flags define. Regenerate the table with
// go test ./cmd/strata -run TestConfigurationDocIsCurrent -update.
func TestConfigurationDocIsCurrent(t *testing.T) {
	const path = "../../docs/configuration.md"
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	head, rest, ok := strings.Cut(string(raw), "<!-- BEGIN SETTINGS -->\n")
	require.True(t, ok, "docs/configuration.md has the BEGIN SETTINGS marker")
	table, tail, ok := strings.Cut(rest, "<!-- END SETTINGS -->")
	require.True(t, ok, "docs/configuration.md has the END SETTINGS marker")
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"config-docs"}, noEnv, nil, &out, io.Discard))
	if *update {
		doc := head + "<!-- BEGIN SETTINGS -->\n" + out.String() + "<!-- END SETTINGS -->" + tail
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
		return
	}
	require.Equal(t, out.String(), table, "regenerate with: go test ./cmd/strata -run TestConfigurationDocIsCurrent -update")
}

// TestGatewayRoutesEveryPublicPath fails when a documented public route
// would not reach, through the gateway, an instance that serves it.
func TestGatewayRoutesEveryPublicPath(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../api/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	var cfg settings
	fs := newFlagSet()
	cfg.registerFlags(fs)
	require.NoError(t, fs.Parse(nil))
	st := &storage{router: sqldbtest.Open(t), masterKey: bytes.Repeat([]byte{1}, 32)}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, _, err := st.authService(&cfg, discard, nil)
	require.NoError(t, err)
	contentSvc, err := st.contentService(cfg.content, cfg.delivery, nil, content.NoEntitlements{}, content.Caches{}, discard, nil)
	require.NoError(t, err)
	paymentsSvc, err := st.paymentsService(cfg.payments, cfg.cardNetwork, contentCatalog{contentSvc}, discard, nil)
	require.NoError(t, err)
	served := map[string][]string{} // pool -> patterns an instance of that role alone serves
	for _, pool := range gateway.Pools {
		mux := newMux(map[string]bool{pool: true}, observability.NewProbes(), observability.NewMetrics(), svc, contentSvc, paymentsSvc,
			webhook.NewService(webhook.Deps{Router: st.router}), nil, httpx.RequireInternal("token"), false)
		served[pool] = mux.Patterns()
	}
	for path, ops := range doc.Paths {
		if path == "/healthz" || path == "/readyz" || path == "/metrics" || strings.HasPrefix(path, httpx.InternalPrefix) {
			_, _, ok := gateway.Route(path)
			require.False(t, ok, "the gateway must not route %s", path)
			continue
		}
		pool, _, ok := gateway.Route(strings.NewReplacer("{", "", "}", "").Replace(path))
		require.True(t, ok, "the gateway routes %s", path)
		for method := range ops {
			if !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, method) {
				continue
			}
			require.Contains(t, served[pool], strings.ToUpper(method)+" "+path, "%s %s goes to the %s pool, whose instances serve it", method, path, pool)
		}
	}
}
