package content_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stretchr/testify/require"
)

// pngFile encodes a w×h PNG.
func pngFile(t testing.TB, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.String()
}

// bombPNG is a PNG signature and header claiming w×h pixels, with no data.
func bombPNG(w, h uint32) string {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.String()
}

type outboxRow struct {
	id      string
	payload []byte
}

// events returns the outbox rows of subject about item, in order.
func (h *harness) events(item, subject string) []outboxRow {
	h.t.Helper()
	var out []outboxRow
	for _, db := range h.router.DBs() {
		rows, err := db.Reader().Query("SELECT id, subject, payload FROM outbox_events ORDER BY id")
		require.NoError(h.t, err)
		for rows.Next() {
			var id, subj, payload string
			require.NoError(h.t, rows.Scan(&id, &subj, &payload))
			var ev struct {
				ItemID string `json:"item_id"`
			}
			require.NoError(h.t, json.Unmarshal([]byte(payload), &ev))
			if subj == subject && ev.ItemID == item {
				out = append(out, outboxRow{id: id, payload: []byte(payload)})
			}
		}
		require.NoError(h.t, rows.Err())
		rows.Close()
	}
	return out
}

// process hands an outbox row to the AssetProcessor as the queue would.
func (h *harness) process(row outboxRow) error {
	return h.proc.Handle(context.Background(), queue.Message{Subject: content.SubjectAssetUploaded, ID: row.id, Data: row.payload, NumDelivered: 1})
}

// upload PUTs file as the item's file and requires 202.
func (h *harness) upload(u user, id, file string) map[string]any {
	h.t.Helper()
	r := h.do(u, "PUT", "/v1/items/"+id+"/file", file)
	require.Equal(h.t, http.StatusAccepted, r.status, "body: %s", r.body)
	return r.json(h.t)["asset"].(map[string]any)
}

// asset reads the item's asset as its creator sees it.
func (h *harness) asset(u user, id string) map[string]any {
	h.t.Helper()
	r := h.do(u, "GET", "/v1/items/"+id, nil)
	require.Equal(h.t, http.StatusOK, r.status, "body: %s", r.body)
	a, _ := r.json(h.t)["asset"].(map[string]any)
	return a
}

func TestUploadProcessPublish(t *testing.T) {
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[1])
	it := h.create(c, itemBody("Sunset", 500))
	file := pngFile(t, 30, 20)

	a := h.upload(c, it.ID, file)
	require.Equal(t, "processing", a["status"])
	require.Equal(t, "image/png", a["media_type"])
	require.EqualValues(t, len(file), a["size"])

	r := h.do(c, "POST", "/v1/items/"+it.ID+"/publish", nil)
	require.Equal(t, http.StatusConflict, r.status)

	rows := h.events(it.ID, content.SubjectAssetUploaded)
	require.Len(t, rows, 1)
	var ev content.AssetUploadedEvent
	require.NoError(t, json.Unmarshal(rows[0].payload, &ev))
	require.Equal(t, c.id, ev.CreatorID)
	require.Equal(t, a["sha256"], ev.SHA256)
	require.Equal(t, "image/png", ev.MediaType)

	require.NoError(t, h.process(rows[0]))
	a = h.asset(c, it.ID)
	require.Equal(t, "ready", a["status"])
	require.EqualValues(t, 30, a["width"])
	require.EqualValues(t, 20, a["height"])
	require.Len(t, h.events(it.ID, content.SubjectAssetReady), 1)

	r = h.do(c, "POST", "/v1/items/"+it.ID+"/publish", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	r = h.do(user{}, "GET", "/v1/items", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), it.ID)

	// Uploading again keeps the item published and processes the new file.
	a = h.upload(c, it.ID, pngFile(t, 8, 9))
	require.Equal(t, "processing", a["status"])
	r = h.do(c, "GET", "/v1/items/"+it.ID, nil)
	require.Equal(t, "published", decodeItem(t, r).Status)
	rows = h.events(it.ID, content.SubjectAssetUploaded)
	require.Len(t, rows, 2)
	require.NoError(t, h.process(rows[1]))
	a = h.asset(c, it.ID)
	require.Equal(t, "ready", a["status"])
	require.EqualValues(t, 8, a["width"])
}

func TestUploadRefused(t *testing.T) {
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[2])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])
	it := h.create(c, itemBody("Song", 100))
	path := "/v1/items/" + it.ID + "/file"

	big := "\x89PNG\r\n\x1a\n" + strings.Repeat("x", testUploadMax)
	r := h.do(c, "PUT", path, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "body: %s", r.body)
	code, _ := r.problem(t)
	require.Equal(t, "body_too_large", code)

	r = h.do(c, "PUT", path, "#!/bin/bash\nrm -rf ~\n")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status, "body: %s", r.body)
	code, _ = r.problem(t)
	require.Equal(t, "unsupported_media_type", code)

	for _, u := range []user{buyer, other} {
		r = h.do(u, "PUT", path, pngFile(t, 2, 2))
		require.Equal(t, http.StatusForbidden, r.status, "body: %s", r.body)
	}
	r = h.do(user{}, "PUT", path, pngFile(t, 2, 2))
	require.Equal(t, http.StatusUnauthorized, r.status)

	require.Nil(t, h.asset(c, it.ID))
	require.Empty(t, h.events(it.ID, content.SubjectAssetUploaded))

	r = h.do(c, "DELETE", "/v1/items/"+it.ID, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = h.do(c, "PUT", path, pngFile(t, 2, 2))
	require.Equal(t, http.StatusConflict, r.status)
	code, _ = r.problem(t)
	require.Equal(t, "item_deleted", code)
}

// failed uploads file, processes it and requires the asset failed with
// reason.
func (h *harness) failed(file, reason string, damage func(sha string)) {
	h.t.Helper()
	c := h.newUser(strata.RoleCreator, testShards[2])
	it := h.create(c, itemBody("Broken", 0))
	a := h.upload(c, it.ID, file)
	if damage != nil {
		damage(a["sha256"].(string))
	}
	rows := h.events(it.ID, content.SubjectAssetUploaded)
	require.Len(h.t, rows, 1)
	require.NoError(h.t, h.process(rows[0]))
	a = h.asset(c, it.ID)
	require.Equal(h.t, "failed", a["status"])
	require.Equal(h.t, reason, a["failure_reason"])
	failed := h.events(it.ID, content.SubjectAssetFailed)
	require.Len(h.t, failed, 1)
	var ev content.AssetResultEvent
	require.NoError(h.t, json.Unmarshal(failed[0].payload, &ev))
	require.Equal(h.t, reason, ev.Reason)
	require.Empty(h.t, h.events(it.ID, content.SubjectAssetReady))
	r := h.do(c, "POST", "/v1/items/"+it.ID+"/publish", nil)
	require.Equal(h.t, http.StatusConflict, r.status)
}

func TestProcessChecksumMismatch(t *testing.T) {
	h := newHarness(t)
	h.failed(pngFile(t, 4, 4), content.ReasonChecksumMismatch, func(sha string) {
		key, err := blob.Key(sha)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(h.blobDir, filepath.FromSlash(key)), []byte(pngFile(t, 5, 5)), 0o600))
	})
}

func TestProcessImageTooLarge(t *testing.T) {
	h := newHarness(t)
	h.failed(bombPNG(100_000, 100_000), content.ReasonImageTooLarge, nil)
}

func TestProcessImageUnreadable(t *testing.T) {
	h := newHarness(t)
	h.failed("\x89PNG\r\n\x1a\n"+"not a header at all", content.ReasonImageUnreadable, nil)
}

func TestProcessStaleAndRepeatedEvents(t *testing.T) {
	h := newHarness(t)
	c := h.newUser(strata.RoleCreator, testShards[0])
	it := h.create(c, itemBody("Twice", 0))
	h.upload(c, it.ID, pngFile(t, 3, 3))
	second := h.upload(c, it.ID, pngFile(t, 6, 7))
	rows := h.events(it.ID, content.SubjectAssetUploaded)
	require.Len(t, rows, 2)

	// The first upload's event is stale: ignored.
	require.NoError(t, h.process(rows[0]))
	a := h.asset(c, it.ID)
	require.Equal(t, "processing", a["status"])
	require.Equal(t, second["sha256"], a["sha256"])
	require.Empty(t, h.events(it.ID, content.SubjectAssetReady))

	require.NoError(t, h.process(rows[1]))
	require.NoError(t, h.process(rows[1])) // redelivered: no second transition
	require.NoError(t, h.process(rows[0]))
	a = h.asset(c, it.ID)
	require.Equal(t, "ready", a["status"])
	require.EqualValues(t, 6, a["width"])
	require.EqualValues(t, 7, a["height"])
	require.Len(t, h.events(it.ID, content.SubjectAssetReady), 1)
	require.Empty(t, h.events(it.ID, content.SubjectAssetFailed))
}

func TestProcessBadEvent(t *testing.T) {
	h := newHarness(t)
	err := h.proc.Handle(context.Background(), queue.Message{ID: "1", Data: []byte("{not json")})
	require.True(t, queue.IsPermanent(err), "%v", err)
	err = h.proc.Handle(context.Background(), queue.Message{ID: "2", Data: []byte(`{"item_id":"nope","sha256":"ab"}`)})
	require.True(t, queue.IsPermanent(err), "%v", err)

	cfg := content.AssetProcessor{}.ConsumerConfig()
	require.Equal(t, content.Stream, cfg.Stream)
	require.Equal(t, "content-processor", cfg.Durable)
	require.Equal(t, []string{content.SubjectAssetUploaded}, cfg.FilterSubjects)
}

func TestConfig(t *testing.T) {
	var c content.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.EqualValues(t, 104857600, c.UploadMaxBytes)
	require.Equal(t, content.DefaultUploadTypes, c.UploadTypes)
	require.NoError(t, c.Validate())

	require.NoError(t, fs.Parse([]string{"--upload-max-bytes=0"}))
	require.ErrorContains(t, c.Validate(), "upload-max-bytes")
	c.UploadMaxBytes = 10
	c.UploadTypes = []string{"image/png; q=1"}
	require.ErrorContains(t, c.Validate(), "upload-types")
}

// flakyBlobs fails every Open as storage that is down.
type flakyBlobs struct{ content.Blobs }

func (flakyBlobs) Open(context.Context, string) (*blob.Reader, blob.Attributes, error) {
	return nil, blob.Attributes{}, &strata.Error{Code: strata.CodeUnavailable, Reason: "blob_unavailable", Message: "storage is down"}
}

// TestProcessGivesUpOnTheLastDelivery: storage errors are retried; on the
// last delivery the asset is marked failed and the event dead-lettered.
func TestProcessGivesUpOnTheLastDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.newUser(strata.RoleCreator, testShards[0])
	id := h.create(owner, itemBody("Flaky", 100)).ID
	h.upload(owner, id, pngFile(t, 2, 2))
	row := h.events(id, content.SubjectAssetUploaded)[0]
	proc := h.proc
	proc.Blobs = flakyBlobs{h.proc.Blobs}
	msg := queue.Message{Subject: content.SubjectAssetUploaded, ID: row.id, Data: row.payload}

	msg.NumDelivered = 1
	err := proc.Handle(context.Background(), msg)
	require.Error(t, err)
	require.False(t, queue.IsPermanent(err), "an early failure is retried")
	require.Equal(t, "processing", h.asset(owner, id)["status"])

	msg.NumDelivered = content.ProcessorMaxDeliver
	err = proc.Handle(context.Background(), msg)
	require.True(t, queue.IsPermanent(err), "the last failure goes to the dead-letter stream")
	a := h.asset(owner, id)
	require.Equal(t, "failed", a["status"])
	require.Equal(t, content.ReasonProcessingFailed, a["failure_reason"])
	require.Len(t, h.events(id, content.SubjectAssetFailed), 1)
}

func TestReprocess(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[1])
	id := h.create(owner, itemBody("Again", 100)).ID

	r := h.do(owner, "POST", "/v1/items/"+id+"/reprocess", nil)
	require.Equal(t, http.StatusConflict, r.status, "nothing to reprocess yet: %s", r.body)

	h.upload(owner, id, pngFile(t, 4, 3))
	require.NoError(t, h.process(h.events(id, content.SubjectAssetUploaded)[0]))
	require.Equal(t, "ready", h.asset(owner, id)["status"])

	require.Equal(t, http.StatusForbidden, h.do(other, "POST", "/v1/items/"+id+"/reprocess", nil).status)
	r = h.do(owner, "POST", "/v1/items/"+id+"/reprocess", nil)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	require.Equal(t, "processing", h.asset(owner, id)["status"])
	again := h.do(owner, "POST", "/v1/items/"+id+"/reprocess", nil)
	require.Equal(t, http.StatusAccepted, again.status)
	events := h.events(id, content.SubjectAssetUploaded)
	require.Len(t, events, 2, "reprocessing twice while processing queues one job")

	require.NoError(t, h.process(events[1]))
	a := h.asset(owner, id)
	require.Equal(t, "ready", a["status"])
	require.EqualValues(t, 4, a["width"])
}
