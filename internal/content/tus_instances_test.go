package content_test

import (
	"context"
	"errors"
	"github.com/stratadev/strata/internal/httpx/httpxtest"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/content/contentsql"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// Resumable uploads across instances: the lease, recovery and expiry.

// node is one Strata instance serving content over the harness's
// databases and blob folder, as another process of the deployment would.
type node struct {
	handler http.Handler
	svc     *content.Service
}

// tusConfig is the harness's configuration, with chunk bounding one PATCH.
func tusConfig(chunk int64) content.Config {
	return content.Config{UploadMaxBytes: testUploadMax, UploadTypes: []string{"image/png", "image/jpeg", "image/gif", "application/pdf"},
		UploadExpiry: content.DefaultUploadExpiry, UploadChunkMaxBytes: chunk}
}

// node starts another instance; wrap, when set, wraps its blob store.
func (h *harness) node(cfg content.Config, wrap func(content.Blobs) content.Blobs) node {
	h.t.Helper()
	blobs, err := blob.Open(context.Background(), h.blobDir)
	require.NoError(h.t, err)
	h.t.Cleanup(func() { blobs.Close() })
	var b content.Blobs = blobs
	if wrap != nil {
		b = wrap(b)
	}
	svc := content.NewService(content.Deps{Store: contentsql.New(h.router, h.clock), Clock: h.clock, Config: cfg, Blobs: b})
	mux := httpx.NewMux()
	content.Routes(mux, svc, httpxtest.Verifier{}, nil)
	return node{handler: httpx.Chain(mux, httpx.RequestID, httpx.Recover), svc: svc}
}

func TestTusSecondInstance(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.node(tusConfig(content.DefaultUploadChunkMaxBytes), nil)
	c := h.newUser(strata.RoleCreator, testShards[2])
	it := h.create(c, itemBody("Travelling", 100))
	file := tusFile(4000, 7)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "travel.png")
	require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 0, file[:1500]).status)

	require.Equal(t, 1500, h.offset(b.handler, c, loc))
	r := h.patch(b.handler, c, loc, 1500, file[1500:])
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	h.requireAttached(it.ID, file, "travel.png")
	require.Equal(t, len(file), h.offset(h.handler, c, loc))
}

func TestTusLockAcrossInstances(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.node(tusConfig(content.DefaultUploadChunkMaxBytes), nil)
	c := h.newUser(strata.RoleCreator, testShards[1])
	it := h.create(c, itemBody("Contended", 100))
	file := tusFile(3000, 8)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "")

	// Instance A reads a body that stalls after 700 bytes.
	pr, pw := io.Pipe()
	done := make(chan response)
	go func() {
		done <- h.tus(h.handler, c, "PATCH", loc, hdr{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, pr)
	}()
	_, err := pw.Write(file[:700]) // returns once A has read it: A holds the lease
	require.NoError(t, err)

	r := h.patch(b.handler, c, loc, 0, file)
	require.Equal(t, http.StatusLocked, r.status, "body: %s", r.body)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Equal(t, "1.0.0", r.header.Get("Tus-Resumable"))
	code, _ := r.problem(t)
	require.Equal(t, "upload_locked", code)
	require.Zero(t, h.offset(b.handler, c, loc), "HEAD is not blocked")
	r = h.tus(b.handler, c, "DELETE", loc, nil, nil)
	require.Equal(t, http.StatusLocked, r.status, "termination waits for the writer")

	// A's client goes away: A keeps what it received and lets go.
	require.NoError(t, pw.CloseWithError(errors.New("connection reset by peer")))
	r = <-done
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	require.Equal(t, 700, h.offset(b.handler, c, loc))

	r = h.patch(b.handler, c, loc, 700, file[700:])
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	h.requireAttached(it.ID, file, "")
}

func TestTusDeadLease(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(c, itemBody("Orphaned", 100))
	file := tusFile(1000, 9)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "")
	id := strata.ID(strings.TrimPrefix(loc, "/v1/uploads/"))

	// An instance died holding the lease for 30 more seconds.
	db, err := h.router.ForID(id)
	require.NoError(t, err)
	_, err = db.Writer().Exec("UPDATE content_uploads SET lock_token = 'dead', lock_until = $1 WHERE id = $2",
		h.clock.Now().Add(30*time.Second).UnixMilli(), id)
	require.NoError(t, err)

	r := h.patch(h.handler, c, loc, 0, file)
	require.Equal(t, http.StatusLocked, r.status, "body: %s", r.body)
	h.clock.Advance(29 * time.Second)
	require.Equal(t, http.StatusLocked, h.patch(h.handler, c, loc, 0, file).status)

	h.clock.Advance(2 * time.Second)
	r = h.patch(h.handler, c, loc, 0, file)
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	h.requireAttached(it.ID, file, "")
}

func TestTusLostLease(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[2])
	it := h.create(c, itemBody("Overtaken", 100))
	file := tusFile(2000, 13)
	loc := h.createUpload(h.handler, c, it.ID, len(file), "")
	id := strata.ID(strings.TrimPrefix(loc, "/v1/uploads/"))
	db, err := h.router.ForID(id)
	require.NoError(t, err)

	pr, pw := io.Pipe()
	done := make(chan response)
	go func() {
		done <- h.tus(h.handler, c, "PATCH", loc, hdr{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, pr)
	}()
	_, err = pw.Write(file[:700])
	require.NoError(t, err)

	// The writer's lease runs out (say its renewals failed) and another
	// request takes the upload over before the body ends.
	h.clock.Advance(31 * time.Second)
	_, err = db.Writer().Exec("UPDATE content_uploads SET lock_token = 'other', lock_until = $1 WHERE id = $2",
		h.clock.Now().Add(30*time.Second).UnixMilli(), id)
	require.NoError(t, err)
	_, err = pw.Write(file[700:1000])
	require.NoError(t, err)
	require.NoError(t, pw.Close())

	r := <-done
	require.Equal(t, http.StatusLocked, r.status, "body: %s", r.body)
	require.Empty(t, h.parts(loc), "the fenced write failed: the part is discarded")
	require.Zero(t, h.offset(h.handler, c, loc))

	h.clock.Advance(31 * time.Second)
	r = h.patch(h.handler, c, loc, 0, file)
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	h.requireAttached(it.ID, file, "")
}

func TestTusExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.node(tusConfig(content.DefaultUploadChunkMaxBytes), nil)
	var locs []string
	var done string
	for i, shard := range testShards {
		c := h.newUser(strata.RoleCreator, shard)
		it := h.create(c, itemBody("Stale", 100))
		file := tusFile(2000, uint64(20+i))
		loc := h.createUpload(h.handler, c, it.ID, len(file), "")
		require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 0, file[:800]).status)
		locs = append(locs, loc)
		if i == 0 {
			// A finished upload expires too.
			require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 800, file[800:]).status)
			done = loc
		}
	}
	c := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(c, itemBody("Stale", 100))
	loc := h.createUpload(h.handler, c, it.ID, 2000, "")
	require.Equal(t, http.StatusNoContent, h.patch(h.handler, c, loc, 0, tusFile(2000, 30)[:800]).status)

	h.clock.Advance(content.DefaultUploadExpiry - time.Minute)
	fresh := h.createUpload(h.handler, c, h.create(c, itemBody("Fresh", 100)).ID, 2000, "")
	h.clock.Advance(time.Minute)

	r := h.tus(h.handler, c, "HEAD", loc, nil, nil)
	require.Equal(t, http.StatusGone, r.status, "body: %s", r.body)
	code, _ := r.problem(t)
	require.Equal(t, "upload_expired", code)
	r = h.patch(h.handler, c, loc, 800, tusFile(2000, 30)[800:])
	require.Equal(t, http.StatusGone, r.status, "body: %s", r.body)
	require.NotEqual(t, "processing", h.asset(c, it.ID)["status"])
	require.Len(t, h.parts(loc), 1)

	// Its owner may still delete it.
	r = h.tus(h.handler, c, "DELETE", loc, nil, nil)
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	require.Empty(t, h.parts(loc))

	removed, err := n.svc.ExpireUploads(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, 3, removed, "every expired upload, in batches of one per database")
	for _, l := range append(locs, loc) {
		require.Empty(t, h.parts(l))
		id := strata.ID(strings.TrimPrefix(l, "/v1/uploads/"))
		_, err := h.store.UploadByID(context.Background(), id)
		require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err), "%s removed", l)
	}
	require.NotEmpty(t, done)
	require.Zero(t, h.offset(h.handler, c, fresh), "an upload not yet expired stays")

	removed, err = n.svc.ExpireUploads(context.Background(), 10)
	require.NoError(t, err)
	require.Zero(t, removed)
}

// putFailsOnce is a blob store whose first Put fails as storage that is
// down, as an instance dying before it finished an upload would leave it.
type putFailsOnce struct {
	content.Blobs
	failed atomic.Bool
}

func (b *putFailsOnce) Put(ctx context.Context, r io.Reader, opts blob.PutOptions) (blob.Object, error) {
	if b.failed.CompareAndSwap(false, true) {
		return blob.Object{}, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "storage is down"}
	}
	return b.Blobs.Put(ctx, r, opts)
}

func TestTusRecoversAnUnfinishedUpload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	flaky := h.node(tusConfig(content.DefaultUploadChunkMaxBytes), func(b content.Blobs) content.Blobs { return &putFailsOnce{Blobs: b} })
	c := h.newUser(strata.RoleCreator, testShards[1])
	it := h.create(c, itemBody("Recovered", 100))
	file := tusFile(2200, 11)
	loc := h.createUpload(flaky.handler, c, it.ID, len(file), "late.png")
	require.Equal(t, http.StatusNoContent, h.patch(flaky.handler, c, loc, 0, file[:1100]).status)

	// The last part is recorded, but the file is not attached.
	r := h.patch(flaky.handler, c, loc, 1100, file[1100:])
	require.Equal(t, http.StatusServiceUnavailable, r.status, "body: %s", r.body)
	require.Nil(t, h.asset(c, it.ID))
	require.Len(t, h.parts(loc), 2)

	// The next HEAD, on any instance, finishes it.
	require.Equal(t, len(file), h.offset(h.handler, c, loc))
	h.requireAttached(it.ID, file, "late.png")
	require.Empty(t, h.parts(loc))
	require.Equal(t, len(file), h.offset(flaky.handler, c, loc))
	require.Len(t, h.events(it.ID, content.SubjectAssetUploaded), 1)
}

func TestTusPatchFinishesAnUnfinishedUpload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	flaky := h.node(tusConfig(content.DefaultUploadChunkMaxBytes), func(b content.Blobs) content.Blobs { return &putFailsOnce{Blobs: b} })
	c := h.newUser(strata.RoleCreator, testShards[2])
	it := h.create(c, itemBody("Recovered by PATCH", 100))
	file := tusFile(900, 12)
	loc := h.createUpload(flaky.handler, c, it.ID, len(file), "")
	require.Equal(t, http.StatusServiceUnavailable, h.patch(flaky.handler, c, loc, 0, file).status)

	// A client that retries its PATCH at the length sends nothing more.
	r := h.patch(flaky.handler, c, loc, len(file), nil)
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	require.Equal(t, strconv.Itoa(len(file)), r.header.Get("Upload-Offset"))
	h.requireAttached(it.ID, file, "")
}
