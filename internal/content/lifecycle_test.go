package content_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stretchr/testify/require"
)

func TestPublishUnpublishDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[1])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])
	admin := h.newUser(strata.RoleAdmin, testShards[2])

	// setup makes an item in a given state.
	type state int
	const (
		draft state = iota
		draftPending
		draftFailed
		draftReady
		published
		unpublished
		deleted
	)
	setup := func(t *testing.T, s state) item {
		t.Helper()
		it := h.create(owner, itemBody("Item", 100))
		put := func(st content.AssetStatus) {
			require.NoError(t, h.store.PutAsset(context.Background(), strata.ID(it.ID), content.Asset{Status: st, FailureReason: "corrupt"}))
		}
		switch s {
		case draftPending:
			put(content.AssetPending)
		case draftFailed:
			put(content.AssetFailed)
		case draftReady:
			h.ready(it.ID)
		case published, unpublished, deleted:
			h.ready(it.ID)
			require.Equal(t, http.StatusOK, h.do(owner, "POST", "/v1/items/"+it.ID+"/publish", nil).status)
			if s == unpublished {
				require.Equal(t, http.StatusOK, h.do(owner, "POST", "/v1/items/"+it.ID+"/unpublish", nil).status)
			}
			if s == deleted {
				require.Equal(t, http.StatusNoContent, h.do(owner, "DELETE", "/v1/items/"+it.ID, nil).status)
			}
		}
		return decodeItem(t, h.do(owner, "GET", "/v1/items/"+it.ID, nil))
	}

	tests := []struct {
		name       string
		from       state
		as         user
		method     string
		action     string // path suffix
		status     int
		code       string
		wantStatus string // the item's status afterwards
		bump       bool   // whether the version moved
	}{
		{"publish without asset", draft, owner, "POST", "/publish", http.StatusConflict, "asset_not_ready", "draft", false},
		{"publish with pending asset", draftPending, owner, "POST", "/publish", http.StatusConflict, "asset_not_ready", "draft", false},
		{"publish with failed asset", draftFailed, owner, "POST", "/publish", http.StatusConflict, "asset_not_ready", "draft", false},
		{"publish with ready asset", draftReady, owner, "POST", "/publish", http.StatusOK, "", "published", true},
		{"admin publishes", draftReady, admin, "POST", "/publish", http.StatusOK, "", "published", true},
		{"publish again is a no-op", published, owner, "POST", "/publish", http.StatusOK, "", "published", false},
		{"republish unpublished", unpublished, owner, "POST", "/publish", http.StatusOK, "", "published", true},
		{"publish deleted", deleted, owner, "POST", "/publish", http.StatusConflict, "item_deleted", "published", false},
		{"buyer publishes", draftReady, buyer, "POST", "/publish", http.StatusForbidden, "not_owner", "draft", false},
		{"other creator publishes", draftReady, other, "POST", "/publish", http.StatusForbidden, "not_owner", "draft", false},
		{"anonymous publishes", draftReady, user{}, "POST", "/publish", http.StatusUnauthorized, "token_missing", "draft", false},
		{"unpublish", published, owner, "POST", "/unpublish", http.StatusOK, "", "unpublished", true},
		{"admin unpublishes", published, admin, "POST", "/unpublish", http.StatusOK, "", "unpublished", true},
		{"unpublish draft is a no-op", draft, owner, "POST", "/unpublish", http.StatusOK, "", "draft", false},
		{"unpublish again is a no-op", unpublished, owner, "POST", "/unpublish", http.StatusOK, "", "unpublished", false},
		{"unpublish deleted", deleted, owner, "POST", "/unpublish", http.StatusConflict, "item_deleted", "published", false},
		{"buyer unpublishes", published, buyer, "POST", "/unpublish", http.StatusForbidden, "not_owner", "published", false},
		{"delete draft", draft, owner, "DELETE", "", http.StatusNoContent, "", "draft", true},
		{"delete published", published, owner, "DELETE", "", http.StatusNoContent, "", "published", true},
		{"admin deletes", published, admin, "DELETE", "", http.StatusNoContent, "", "published", true},
		{"delete again is a no-op", deleted, owner, "DELETE", "", http.StatusNoContent, "", "published", false},
		{"buyer deletes", published, buyer, "DELETE", "", http.StatusForbidden, "not_owner", "published", false},
		{"other creator deletes", published, other, "DELETE", "", http.StatusForbidden, "not_owner", "published", false},
		{"anonymous deletes", published, user{}, "DELETE", "", http.StatusUnauthorized, "token_missing", "published", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := setup(t, tt.from)
			r := h.do(tt.as, tt.method, "/v1/items/"+before.ID+tt.action, nil)
			require.Equal(t, tt.status, r.status, "body: %s", r.body)
			if tt.code != "" {
				code, _ := r.problem(t)
				require.Equal(t, tt.code, code)
			}
			after := decodeItem(t, h.do(owner, "GET", "/v1/items/"+before.ID, nil))
			require.Equal(t, tt.wantStatus, after.Status)
			if tt.bump {
				require.Equal(t, before.Version+1, after.Version)
			} else {
				require.Equal(t, before.Version, after.Version)
			}
			if tt.method == "DELETE" && tt.status == http.StatusNoContent {
				require.Empty(t, r.body)
				require.NotEmpty(t, after.DeletedAt)
			}
		})
	}

	t.Run("unknown item", func(t *testing.T) {
		id := string(strata.NewID("itm", 2, h.clock.Now()))
		for _, path := range []string{"/publish", "/unpublish", ""} {
			method := "POST"
			if path == "" {
				method = "DELETE"
			}
			r := h.do(owner, method, "/v1/items/"+id+path, nil)
			require.Equal(t, http.StatusNotFound, r.status, "%s %s: %s", method, path, r.body)
		}
	})

	t.Run("put asset on unknown item", func(t *testing.T) {
		err := h.store.PutAsset(context.Background(), strata.NewID("itm", 2, h.clock.Now()), content.Asset{Status: content.AssetReady})
		require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err))
	})

	t.Run("asset is shown", func(t *testing.T) {
		it := setup(t, draftReady)
		require.NotNil(t, it.Asset)
		require.Equal(t, "ready", it.Asset.Status)
		r := h.do(owner, "GET", "/v1/items/"+it.ID, nil)
		asset := r.json(t)["asset"].(map[string]any)
		require.Equal(t, map[string]any{"status": "ready", "sha256": "abababababababababababababababababababababababababababababababab",
			"size": float64(1234), "media_type": "image/png", "width": float64(10), "height": float64(20)}, asset)
	})
}

func TestOutboxEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.newUser(strata.RoleCreator, testShards[1])
	buyer := h.newUser(strata.RoleBuyer, testShards[0])

	it := h.create(owner, itemBody("Evented", 100, "a"))
	h.ready(it.ID)
	steps := []struct {
		as     user
		method string
		path   string
		body   any
	}{
		{owner, "PATCH", "", map[string]any{"title": "Renamed", "tags": []string{"b"}}},
		{owner, "PATCH", "", map[string]any{"title": "Renamed"}}, // no change: no event
		{buyer, "PATCH", "", map[string]any{"title": "Stolen"}},  // refused: no event
		{owner, "POST", "/publish", nil},
		{owner, "POST", "/publish", nil}, // no-op
		{owner, "POST", "/unpublish", nil},
		{owner, "DELETE", "", nil},
		{owner, "DELETE", "", nil}, // no-op
	}
	for _, s := range steps {
		h.do(s.as, s.method, "/v1/items/"+it.ID+s.path, s.body)
	}

	counts, events := h.outbox(it.ID)
	require.Equal(t, map[string]int{
		content.SubjectItemCreated: 1, content.SubjectItemUpdated: 1, content.SubjectItemPublished: 1,
		content.SubjectItemUnpublished: 1, content.SubjectItemDeleted: 1,
	}, counts)
	require.Len(t, events, 5)
	for i, ev := range events {
		require.Equal(t, int64(i+1), ev.Version, "events carry consecutive versions")
		require.Equal(t, owner.id, ev.CreatorID)
	}
	require.Equal(t, "Evented", events[0].Changed["title"])
	require.Equal(t, map[string]any{"title": "Renamed", "tags": []any{"b"}}, events[1].Changed)
	require.Equal(t, map[string]any{"status": "published"}, events[2].Changed)
	require.Equal(t, map[string]any{"status": "unpublished"}, events[3].Changed)
	require.Contains(t, events[4].Changed, "deleted_at")

	// The events are on the item's shard, written with the item.
	shard, _ := strata.ID(it.ID).Shard()
	var n int
	require.NoError(t, h.router.Shard(shard).Reader().QueryRow(
		"SELECT COUNT(*) FROM outbox_events WHERE subject LIKE 'content.item.%'").Scan(&n))
	require.Equal(t, 5, n)
}

func TestStreamConfig(t *testing.T) {
	t.Parallel()
	c := content.StreamConfig()
	require.Equal(t, "CONTENT", c.Name)
	require.Equal(t, []string{"content.>"}, c.Subjects)
	require.Equal(t, 7*24*60*60.0, c.MaxAge.Seconds())
}
