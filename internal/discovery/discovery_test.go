package discovery_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/discovery"
	"github.com/stretchr/testify/require"
)

// waitFor is the deadline of every wait for asynchronous work.
const waitFor = 5 * time.Second

// runSource runs src until the test ends and returns the sets it reports.
// Cleanup cancels it and checks that Run returned nil.
func runSource(t *testing.T, src discovery.Source) (<-chan []discovery.Instance, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sets := make(chan []discovery.Instance, 100)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(set []discovery.Instance) { sets <- set }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Error("source did not return after its context ended")
		}
	})
	return sets, cancel
}

// next returns the next set reported, failing the test after within.
func next(t *testing.T, sets <-chan []discovery.Instance, within time.Duration) []discovery.Instance {
	t.Helper()
	select {
	case set := <-sets:
		return set
	case <-time.After(within):
		t.Fatalf("no update within %s", within)
		return nil
	}
}

// requireNone fails if a set was reported.
func requireNone(t *testing.T, sets <-chan []discovery.Instance) {
	t.Helper()
	select {
	case set := <-sets:
		t.Fatalf("unexpected update %v", set)
	default:
	}
}

func inst(url string, roles ...string) discovery.Instance {
	if roles == nil {
		roles = []string{}
	}
	return discovery.Instance{URL: url, Roles: roles}
}

func TestStaticReportsOnce(t *testing.T) {
	t.Parallel()
	src := discovery.Static(
		inst("http://10.0.0.2:8080", "payments"),
		inst("http://10.0.0.1:8080", "content", "auth", "auth"),
	)
	want := []discovery.Instance{
		inst("http://10.0.0.1:8080", "auth", "content"),
		inst("http://10.0.0.2:8080", "payments"),
	}

	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu    sync.Mutex
		calls int
	)
	done := make(chan error, 1)
	first := make(chan []discovery.Instance, 1)
	go func() {
		done <- src.Run(ctx, func(set []discovery.Instance) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			first <- set
		})
	}()
	got := next(t, first, waitFor)
	require.Equal(t, want, got, "sorted by URL, roles sorted without repeats")
	got[0].URL = "changed"
	got[0].Roles[0] = "changed"

	select {
	case err := <-done:
		t.Fatalf("Run returned %v before its context ended", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context ended")
	}
	mu.Lock()
	require.Equal(t, 1, calls)
	mu.Unlock()

	sets, _ := runSource(t, src)
	require.Equal(t, want, next(t, sets, waitFor), "a fresh set each run: the caller's changes do not reach the source")
}

func TestStaticEmpty(t *testing.T) {
	t.Parallel()
	sets, _ := runSource(t, discovery.Static())
	require.Equal(t, []discovery.Instance{}, next(t, sets, waitFor))
}

// logRecorder is a slog handler that counts records by level and message.
type logRecorder struct {
	mu     sync.Mutex
	counts map[string]int
}

func newLogRecorder() *logRecorder { return &logRecorder{counts: map[string]int{}} }

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) count(level slog.Level, msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[level.String()+" "+msg]
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[rec.Level.String()+" "+rec.Message]++
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }
