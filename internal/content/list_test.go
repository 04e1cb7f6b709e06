package content_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stretchr/testify/require"
)

type page struct {
	Items      []item `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (h *harness) list(t *testing.T, as user, query url.Values) page {
	t.Helper()
	r := h.do(as, "GET", "/v1/items?"+query.Encode(), nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var p page
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	return p
}

func ids(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func TestListPaginationAcrossShards(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	creators := []user{
		h.newUser(strata.RoleCreator, testShards[0]),
		h.newUser(strata.RoleCreator, testShards[1]),
		h.newUser(strata.RoleCreator, testShards[2]),
	}
	var want []string // newest first
	for i := range 25 {
		it := h.published(creators[i%3], itemBody(fmt.Sprintf("Item %02d", i), int64(i)))
		want = append([]string{it.ID}, want...)
		h.clock.Advance(time.Millisecond)
	}
	// Items that must not be listed.
	h.create(creators[0], itemBody("A draft", 0))
	gone := h.published(creators[1], itemBody("Gone", 0))
	require.Equal(t, http.StatusNoContent, h.do(creators[1], "DELETE", "/v1/items/"+gone.ID, nil).status)
	hidden := h.published(creators[2], itemBody("Hidden", 0))
	require.Equal(t, http.StatusOK, h.do(creators[2], "POST", "/v1/items/"+hidden.ID+"/unpublish", nil).status)

	for _, limit := range []int{1, 7, 10, 25, 100} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				require.Less(t, pages, 30, "pagination does not end")
				q := url.Values{"limit": {fmt.Sprint(limit)}}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				p := h.list(t, user{}, q)
				require.LessOrEqual(t, len(p.Items), limit)
				got = append(got, ids(p.Items)...)
				for _, it := range p.Items {
					require.Equal(t, "published", it.Status)
				}
				if p.NextCursor == "" {
					break
				}
				require.Len(t, p.Items, limit, "only the last page is short")
				require.Equal(t, p.Items[len(p.Items)-1].ID, p.NextCursor)
				cursor = p.NextCursor
			}
			require.Equal(t, want, got, "every item once, newest first")
		})
	}

	t.Run("default limit", func(t *testing.T) {
		p := h.list(t, user{}, nil)
		require.Equal(t, want[:20], ids(p.Items))
		require.Equal(t, want[19], p.NextCursor)
	})

	t.Run("owner and admin do not see drafts in the catalog", func(t *testing.T) {
		p := h.list(t, creators[0], url.Values{"limit": {"100"}})
		require.Equal(t, want, ids(p.Items))
	})

	t.Run("deleted item is still seen by its owner", func(t *testing.T) {
		r := h.do(creators[1], "GET", "/v1/items/"+gone.ID, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.NotEmpty(t, decodeItem(t, r).DeletedAt)
	})
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	alice := h.newUser(strata.RoleCreator, testShards[0])
	bob := h.newUser(strata.RoleCreator, testShards[2])
	mk := func(u user, title string, tags ...string) string {
		h.clock.Advance(time.Millisecond)
		return h.published(u, itemBody(title, 100, tags...)).ID
	}
	sunset := mk(alice, "Golden Sunset", "photo", "nature")
	percent := mk(alice, "100% Pure", "photo")
	under := mk(bob, "snake_case guide", "code")
	plain := mk(bob, "snakeXcase guide", "code", "nature")
	accent := mk(bob, "ÉCOLE Notes")
	slash := mk(alice, `back\slash`)
	draft := h.create(alice, itemBody("Golden draft", 0, "photo")).ID

	tests := []struct {
		name  string
		query url.Values
		want  []string // newest first
	}{
		{"no filter", nil, []string{slash, accent, plain, under, percent, sunset}},
		{"creator", url.Values{"creator": {string(alice.id)}}, []string{slash, percent, sunset}},
		{"other creator", url.Values{"creator": {string(bob.id)}}, []string{accent, plain, under}},
		{"creator without items", url.Values{"creator": {string(h.newUser(strata.RoleCreator, 5).id)}}, nil},
		{"tag", url.Values{"tag": {"nature"}}, []string{plain, sunset}},
		{"tag uppercase", url.Values{"tag": {"PHOTO"}}, []string{percent, sunset}},
		{"tag and creator", url.Values{"tag": {"nature"}, "creator": {string(bob.id)}}, []string{plain}},
		{"unknown tag", url.Values{"tag": {"none"}}, nil},
		{"q case-insensitive", url.Values{"q": {"golden"}}, []string{sunset}},
		{"q non-ASCII case-insensitive", url.Values{"q": {"école"}}, []string{accent}},
		{"q percent is literal", url.Values{"q": {"0%"}}, []string{percent}},
		{"q percent alone", url.Values{"q": {"%"}}, []string{percent}},
		{"q underscore is literal", url.Values{"q": {"e_c"}}, []string{under}},
		{"q underscore alone", url.Values{"q": {"_"}}, []string{under}},
		{"q backslash is literal", url.Values{"q": {`k\s`}}, []string{slash}},
		{"q and tag", url.Values{"q": {"guide"}, "tag": {"nature"}}, []string{plain}},
		{"q matches nothing", url.Values{"q": {"zzz"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.list(t, user{}, tt.query)
			got := ids(p.Items)
			if tt.want == nil {
				tt.want = []string{}
			}
			require.Equal(t, tt.want, got)
			require.False(t, slices.Contains(got, draft))
		})
	}

	t.Run("filters hold across pages", func(t *testing.T) {
		p := h.list(t, user{}, url.Values{"q": {"GUIDE"}, "limit": {"1"}})
		require.Equal(t, []string{plain}, ids(p.Items))
		p = h.list(t, user{}, url.Values{"q": {"GUIDE"}, "limit": {"1"}, "cursor": {p.NextCursor}})
		require.Equal(t, []string{under}, ids(p.Items))
		require.Empty(t, p.NextCursor)
	})
}

func TestListBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	usr := string(strata.NewID("usr", 1, time.Now()))
	tests := []struct {
		name  string
		query string
		field string
	}{
		{"cursor garbage", "cursor=abc", "cursor"},
		{"cursor of another kind", "cursor=" + usr, "cursor"},
		{"limit zero", "limit=0", "limit"},
		{"limit too large", "limit=101", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"limit negative", "limit=-1", "limit"},
		{"creator garbage", "creator=bob", "creator"},
		{"bad tag", "tag=a_b", "tag"},
		{"tag too long", "tag=" + fmt.Sprintf("%033d", 0), "tag"},
		{"q too long", "q=" + fmt.Sprintf("%0201d", 0), "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(user{}, "GET", "/v1/items?"+tt.query, nil)
			require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
			code, fields := r.problem(t)
			require.Equal(t, "validation_failed", code)
			require.Equal(t, []string{tt.field}, fields)
		})
	}
}

func TestListRefusesRepeatsAndInvisibleCharacters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, q := range []string{"?tag=a&tag=b", "?q=%E2%80%AEevil", "?q=a%00b", "?creator=x&creator=y"} {
		r := h.do(user{}, "GET", "/v1/items"+q, nil)
		require.Equal(t, 400, r.status, "query %s: %s", q, r.body)
	}
}
