package content_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stretchr/testify/require"
)

func TestCreateItem(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	creator := h.newUser(strata.RoleCreator, testShards[1])
	admin := h.newUser(strata.RoleAdmin, testShards[0])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])

	good := itemBody("Sunset", 500, "Photo", "nature", "photo")
	withPrice := func(p any) map[string]any { b := itemBody("x", 0); b["price"] = p; return b }
	withTitle := func(s string) map[string]any { b := itemBody(s, 0); b["description"] = ""; return b }
	withTags := func(tags ...string) map[string]any { return itemBody("x", 0, tags...) }
	many := make([]string, 11)
	for i := range many {
		many[i] = "t" + string(rune('a'+i))
	}

	tests := []struct {
		name   string
		as     user
		body   any
		status int
		code   string   // problem code when failing
		fields []string // invalid fields named
	}{
		{name: "creator", as: creator, body: good, status: http.StatusCreated},
		{name: "admin", as: admin, body: good, status: http.StatusCreated},
		{name: "free item", as: creator, body: itemBody("Free", 0), status: http.StatusCreated},
		{name: "tags deduplicated to ten", as: creator, body: withTags(append(many[:10:10], "TA", "ta")...), status: http.StatusCreated},
		{name: "anonymous", body: good, status: http.StatusUnauthorized, code: "token_missing"},
		{name: "buyer", as: buyer, body: good, status: http.StatusForbidden, code: "role_required"},
		{name: "malformed json", as: creator, body: `{"title": "x",`, status: http.StatusBadRequest, code: "malformed_json"},
		{name: "unknown field", as: creator, body: `{"title": "x", "price": {"amount": 1, "currency": "USD"}, "owner": "me"}`, status: http.StatusBadRequest, code: "unknown_field", fields: []string{"owner"}},
		{name: "unknown field in price", as: creator, body: `{"title": "x", "price": {"amount": 1, "currency": "USD", "tax": 1}}`, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price"}},
		{name: "price missing", as: creator, body: `{"title": "x"}`, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price"}},
		{name: "price amount missing", as: creator, body: withPrice(map[string]any{"currency": "USD"}), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price"}},
		{name: "price as float", as: creator, body: withPrice(map[string]any{"amount": 1.5, "currency": "USD"}), status: http.StatusBadRequest, fields: []string{"price"}},
		{name: "negative price", as: creator, body: withPrice(map[string]any{"amount": -1, "currency": "USD"}), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price.amount"}},
		{name: "unknown currency", as: creator, body: withPrice(map[string]any{"amount": 100, "currency": "XXX"}), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price.currency"}},
		{name: "title empty", as: creator, body: withTitle("   "), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "title too long", as: creator, body: withTitle(strings.Repeat("é", 201)), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "bidi override in title", as: creator, body: withTitle("invoice\u202egpj.exe"), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "title longest", as: creator, body: withTitle(strings.Repeat("é", 200)), status: http.StatusCreated},
		{name: "title control character", as: creator, body: withTitle("a\u0007b"), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "description too long", as: creator, body: map[string]any{"title": "x", "description": strings.Repeat("d", 10001), "price": map[string]any{"amount": 0, "currency": "EUR"}}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"description"}},
		{name: "too many tags", as: creator, body: withTags(many...), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"tags"}},
		{name: "bad tag characters", as: creator, body: withTags("ok", "no_underscore"), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"tags"}},
		{name: "empty tag", as: creator, body: withTags(""), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"tags"}},
		{name: "tag too long", as: creator, body: withTags(strings.Repeat("a", 33)), status: http.StatusBadRequest, code: "validation_failed", fields: []string{"tags"}},
		{name: "several invalid fields", as: creator, body: map[string]any{"title": "", "price": map[string]any{"amount": -5, "currency": "USD"}, "tags": []string{"BAD TAG"}}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title", "price.amount", "tags"}},
		{name: "oversize body", as: creator, body: `{"title": "x", "description": "` + strings.Repeat("d", 70<<10) + `"}`, status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
		{name: "empty body", as: creator, body: "", status: http.StatusBadRequest, code: "empty_body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.as, "POST", "/v1/items", tt.body)
			require.Equal(t, tt.status, r.status, "body: %s", r.body)
			if tt.status != http.StatusCreated {
				code, fields := r.problem(t)
				if tt.code != "" {
					require.Equal(t, tt.code, code)
				}
				if tt.fields != nil {
					require.Equal(t, tt.fields, fields)
				}
				return
			}
			it := decodeItem(t, r)
			require.True(t, strings.HasPrefix(it.ID, "itm_"), it.ID)
			require.Equal(t, string(tt.as.id), it.CreatorID)
			require.Equal(t, "draft", it.Status)
			require.Nil(t, it.Asset)
			require.Equal(t, int64(1), it.Version)
			require.NotEmpty(t, it.CreatedAt)
			require.Equal(t, it.CreatedAt, it.UpdatedAt)
			require.Contains(t, string(r.body), `"asset":null`)
			shard, _ := strata.ID(it.ID).Shard()
			creatorShard, _ := tt.as.id.Shard()
			require.Equal(t, creatorShard, shard, "an item lives on its creator's shard")
		})
	}

	t.Run("normalized tags", func(t *testing.T) {
		it := h.create(creator, good)
		require.Equal(t, []string{"photo", "nature"}, it.Tags)
		require.Equal(t, strata.Money{Amount: 500, Currency: "USD"}, it.Price)
		require.Equal(t, "Sunset", it.Title)
		require.Equal(t, "about Sunset", it.Description)
	})
}

func TestGetItem(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[1])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])
	admin := h.newUser(strata.RoleAdmin, testShards[2])
	anon := user{}

	draft := h.create(owner, itemBody("Draft", 100))
	pub := h.published(owner, itemBody("Published", 100))
	unpub := h.published(owner, itemBody("Unpublished", 100))
	require.Equal(t, http.StatusOK, h.do(owner, "POST", "/v1/items/"+unpub.ID+"/unpublish", nil).status)
	deleted := h.published(owner, itemBody("Deleted", 100))
	require.Equal(t, http.StatusNoContent, h.do(owner, "DELETE", "/v1/items/"+deleted.ID, nil).status)

	tests := []struct {
		name        string
		as          user
		id          string
		status      int
		wantDeleted bool
	}{
		{"owner sees draft", owner, draft.ID, http.StatusOK, false},
		{"admin sees draft", admin, draft.ID, http.StatusOK, false},
		{"other creator does not see draft", other, draft.ID, http.StatusNotFound, false},
		{"buyer does not see draft", buyer, draft.ID, http.StatusNotFound, false},
		{"anonymous does not see draft", anon, draft.ID, http.StatusNotFound, false},
		{"anonymous sees published", anon, pub.ID, http.StatusOK, false},
		{"buyer sees published", buyer, pub.ID, http.StatusOK, false},
		{"buyer does not see unpublished", buyer, unpub.ID, http.StatusNotFound, false},
		{"owner sees unpublished", owner, unpub.ID, http.StatusOK, false},
		{"buyer does not see deleted", buyer, deleted.ID, http.StatusNotFound, false},
		{"anonymous does not see deleted", anon, deleted.ID, http.StatusNotFound, false},
		{"owner sees deleted", owner, deleted.ID, http.StatusOK, true},
		{"admin sees deleted", admin, deleted.ID, http.StatusOK, true},
		{"unknown id", owner, string(strata.NewID("itm", 3, h.clock.Now())), http.StatusNotFound, false},
		{"malformed id", owner, "itm_nope", http.StatusNotFound, false},
		{"id of another kind", owner, string(owner.id), http.StatusNotFound, false},
		{"id on a shard beyond the deployment", owner, string(strata.NewID("itm", 999, h.clock.Now())), http.StatusNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.as, "GET", "/v1/items/"+tt.id, nil)
			require.Equal(t, tt.status, r.status, "body: %s", r.body)
			if tt.status != http.StatusOK {
				code, _ := r.problem(t)
				require.Equal(t, "item_not_found", code)
				return
			}
			it := decodeItem(t, r)
			require.Equal(t, tt.id, it.ID)
			require.Equal(t, tt.wantDeleted, it.DeletedAt != "")
		})
	}

	t.Run("bad token is 401 even on a public read", func(t *testing.T) {
		r := h.do(user{token: "garbage"}, "GET", "/v1/items/"+pub.ID, nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
	})
}

func TestUpdateItem(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.newUser(strata.RoleCreator, testShards[0])
	other := h.newUser(strata.RoleCreator, testShards[1])
	buyer := h.newUser(strata.RoleBuyer, testShards[2])
	admin := h.newUser(strata.RoleAdmin, testShards[2])

	tests := []struct {
		name    string
		as      user
		body    any
		status  int
		code    string
		fields  []string
		check   func(t *testing.T, before, after item)
		deleted bool // delete the item first
		publish bool // publish the item first
	}{
		{name: "owner changes title", as: owner, body: map[string]any{"title": "  New title "}, status: http.StatusOK,
			check: func(t *testing.T, before, after item) {
				require.Equal(t, "New title", after.Title)
				require.Equal(t, before.Description, after.Description)
				require.Equal(t, before.Price, after.Price)
				require.Equal(t, before.Tags, after.Tags)
				require.Equal(t, before.Version+1, after.Version)
				require.Greater(t, after.UpdatedAt, before.UpdatedAt)
			}},
		{name: "admin changes price and tags", as: admin, body: map[string]any{"price": map[string]any{"amount": 0, "currency": "JPY"}, "tags": []string{"Free", "free"}}, status: http.StatusOK,
			check: func(t *testing.T, before, after item) {
				require.Equal(t, strata.Money{Amount: 0, Currency: "JPY"}, after.Price)
				require.Equal(t, []string{"free"}, after.Tags)
				require.Equal(t, before.Title, after.Title)
			}},
		{name: "null description and tags clear them", as: owner, body: `{"description": null, "tags": null}`, status: http.StatusOK,
			check: func(t *testing.T, _, after item) {
				require.Equal(t, "", after.Description)
				require.Equal(t, []string{}, after.Tags)
			}},
		{name: "empty patch changes nothing", as: owner, body: `{}`, status: http.StatusOK,
			check: func(t *testing.T, before, after item) { require.Equal(t, before, after) }},
		{name: "same values change nothing", as: owner, body: map[string]any{"title": "Original"}, status: http.StatusOK,
			check: func(t *testing.T, before, after item) { require.Equal(t, before.Version, after.Version) }},
		{name: "owner edits published item", as: owner, publish: true, body: map[string]any{"title": "Live edit"}, status: http.StatusOK,
			check: func(t *testing.T, _, after item) { require.Equal(t, "published", after.Status) }},
		{name: "buyer", as: buyer, body: map[string]any{"title": "Mine now"}, status: http.StatusForbidden, code: "not_owner"},
		{name: "buyer on published item", as: buyer, publish: true, body: map[string]any{"title": "Mine now"}, status: http.StatusForbidden, code: "not_owner"},
		{name: "other creator", as: other, body: map[string]any{"title": "Mine now"}, status: http.StatusForbidden, code: "not_owner"},
		{name: "anonymous", body: map[string]any{"title": "x"}, status: http.StatusUnauthorized, code: "token_missing"},
		{name: "deleted item", as: owner, deleted: true, body: map[string]any{"title": "x"}, status: http.StatusConflict, code: "item_deleted"},
		{name: "null title", as: owner, body: `{"title": null}`, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "null price", as: owner, body: `{"price": null}`, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price"}},
		{name: "empty title", as: owner, body: map[string]any{"title": ""}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "title too long", as: owner, body: map[string]any{"title": strings.Repeat("t", 201)}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"title"}},
		{name: "negative price", as: owner, body: map[string]any{"price": map[string]any{"amount": -1, "currency": "USD"}}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price.amount"}},
		{name: "unknown currency", as: owner, body: map[string]any{"price": map[string]any{"amount": 1, "currency": "usd"}}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"price.currency"}},
		{name: "bad tag", as: owner, body: map[string]any{"tags": []string{"a b"}}, status: http.StatusBadRequest, code: "validation_failed", fields: []string{"tags"}},
		{name: "title of wrong type", as: owner, body: `{"title": 5}`, status: http.StatusBadRequest},
		{name: "unknown field", as: owner, body: `{"status": "published"}`, status: http.StatusBadRequest, code: "unknown_field", fields: []string{"status"}},
		{name: "malformed json", as: owner, body: `{"title": `, status: http.StatusBadRequest, code: "malformed_json"},
		{name: "oversize body", as: owner, body: `{"description": "` + strings.Repeat("d", 65<<10) + `"}`, status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before item
			if tt.publish {
				before = h.published(owner, itemBody("Original", 100, "art"))
			} else {
				before = h.create(owner, itemBody("Original", 100, "art"))
			}
			if tt.deleted {
				require.Equal(t, http.StatusNoContent, h.do(owner, "DELETE", "/v1/items/"+before.ID, nil).status)
			}
			h.clock.Advance(5 * time.Millisecond)
			r := h.do(tt.as, "PATCH", "/v1/items/"+before.ID, tt.body)
			require.Equal(t, tt.status, r.status, "body: %s", r.body)
			if tt.status != http.StatusOK {
				code, fields := r.problem(t)
				if tt.code != "" {
					require.Equal(t, tt.code, code)
				}
				if tt.fields != nil {
					require.Equal(t, tt.fields, fields)
				}
				if !tt.deleted {
					now := decodeItem(t, h.do(owner, "GET", "/v1/items/"+before.ID, nil))
					require.Equal(t, before, now, "a refused change leaves the item as it was")
				}
				return
			}
			after := decodeItem(t, r)
			tt.check(t, before, after)
			require.Equal(t, after, decodeItem(t, h.do(owner, "GET", "/v1/items/"+before.ID, nil)), "the change is stored")
		})
	}
}
