package content

import (
	"encoding/json"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// Stream names the JetStream stream carrying content's events.
const Stream = "CONTENT"

// Subjects of the events content publishes.
const (
	SubjectItemCreated     = "content.item.created"
	SubjectItemUpdated     = "content.item.updated"
	SubjectItemPublished   = "content.item.published"
	SubjectItemUnpublished = "content.item.unpublished"
	SubjectItemDeleted     = "content.item.deleted"

	SubjectAssetUploaded = "content.asset.uploaded" // AssetUploadedEvent
	SubjectAssetReady    = "content.asset.ready"    // AssetResultEvent
	SubjectAssetFailed   = "content.asset.failed"   // AssetResultEvent
)

// StreamConfig is the stream content's events are published to. Messages
// are kept a week: consumers such as a search indexer may be down for a
// while and still catch up.
func StreamConfig() queue.StreamConfig {
	return queue.StreamConfig{Name: Stream, Subjects: []string{"content.>"}, MaxAge: 7 * 24 * time.Hour}
}

// ItemEvent is the payload of every content.item.* event. Changed holds the
// fields the change set, by their JSON names (all of them for
// item.created); consumers apply events of an item in Version order and
// drop those older than what they hold.
type ItemEvent struct {
	ItemID    strata.ID      `json:"item_id"`
	CreatorID strata.ID      `json:"creator_id"`
	Version   int64          `json:"version"`
	At        string         `json:"at"` // RFC 3339, milliseconds, UTC
	Changed   map[string]any `json:"changed"`
}

func itemEvent(subject string, it *Item, changed map[string]any) (queue.Event, error) {
	payload, err := json.Marshal(ItemEvent{
		ItemID: it.ID, CreatorID: it.CreatorID, Version: it.Version, At: formatTime(it.UpdatedAt), Changed: changed,
	})
	if err != nil {
		return queue.Event{}, strata.Internal(err)
	}
	return queue.Event{Subject: subject, Payload: payload}, nil
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func assetEvent(subject string, payload []byte) queue.Event {
	return queue.Event{Subject: subject, Payload: payload}
}
