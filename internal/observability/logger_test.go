package observability_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stratadev/strata/internal/observability"
	"github.com/stretchr/testify/require"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		format    string
		level     string
		wantErr   string
		wantDebug bool
		wantInfo  bool
	}{
		{name: "json info", format: "json", level: "info", wantInfo: true},
		{name: "text debug", format: "text", level: "debug", wantDebug: true, wantInfo: true},
		{name: "upper case", format: "JSON", level: "WARN"},
		{name: "error level", format: "json", level: "error"},
		{name: "bad format", format: "xml", level: "info", wantErr: "log-format"},
		{name: "empty format", format: "", level: "info", wantErr: "log-format"},
		{name: "bad level", format: "json", level: "verbose", wantErr: "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger, err := observability.NewLogger(&buf, tt.format, tt.level)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, logger)
				return
			}
			require.NoError(t, err)
			logger.Debug("debug line")
			require.Equal(t, tt.wantDebug, bytes.Contains(buf.Bytes(), []byte("debug line")))
			logger.Info("info line", "user_id", "usr_1")
			require.Equal(t, tt.wantInfo, bytes.Contains(buf.Bytes(), []byte("info line")))
			logger.Error("error line")
			require.Contains(t, buf.String(), "error line")
		})
	}
}

func TestNewLoggerJSONShape(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger, err := observability.NewLogger(&buf, "json", "info")
	require.NoError(t, err)
	logger.Info("item created", "item_id", "itm_1")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "item created", line["msg"])
	require.Equal(t, "INFO", line["level"])
	require.Equal(t, "itm_1", line["item_id"])
}
