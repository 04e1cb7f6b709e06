package content

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/cache"
)

// Caches are the caches the catalog reads through; a nil field is no
// cache. Items holds items by id (shared through Redis when configured);
// Lists holds listing pages in this process only, briefly, since any
// item's change may change any page.
type Caches struct {
	Items *cache.Cache[Item]
	Lists *cache.Cache[ListPage]
	// Bodies holds the encoded JSON of GET /v1/items/{id}, in this process
	// only, keyed by the item's id and version and every asset field the
	// answer shows (processing changes the asset, not the version): the
	// answer to one key never changes, so nothing invalidates it (old keys
	// age out).
	Bodies *cache.Cache[[]byte]
}

// itemBody returns the encoded JSON of it, from the body cache when set.
func (s *Service) itemBody(ctx context.Context, it *Item) ([]byte, error) {
	encode := func(context.Context) ([]byte, error) { return json.Marshal(s.toItemJSON(it)) }
	if s.caches.Bodies == nil {
		return encode(ctx)
	}
	key := string(it.ID) + "|" + strconv.FormatInt(it.Version, 10)
	if a := it.Asset; a != nil {
		key += fmt.Sprintf("|%s|%s|%d|%s|%d|%d|%s|%s", a.Status, a.SHA256, a.Size, a.MediaType, a.Width, a.Height,
			a.FailureReason, a.Filename)
		if l := a.served(); l != nil {
			key += "|" + l.ThumbnailSHA256 + "|" + l.PreviewSHA256
		}
	}
	return s.caches.Bodies.Get(ctx, key, encode)
}

// ListPage is one page of a listing and the cursor of the next ("" on
// the last).
type ListPage struct {
	Items []Item    `json:"items"`
	Next  strata.ID `json:"next"`
}

// itemByID reads an item through the item cache. The item is a copy the
// caller may keep; its Asset is shared and must not be changed.
func (s *Service) itemByID(ctx context.Context, id strata.ID) (*Item, error) {
	if s.caches.Items == nil {
		return s.store.ItemByID(ctx, id)
	}
	it, err := s.caches.Items.Get(ctx, string(id), func(ctx context.Context) (Item, error) {
		it, err := s.store.ItemByID(ctx, id)
		if err != nil {
			return Item{}, err
		}
		return *it, nil
	})
	if err != nil {
		return nil, err
	}
	return &it, nil
}

// listItems reads a listing page through the listing cache.
func (s *Service) listItems(ctx context.Context, f ListFilter) (ListPage, error) {
	load := func(ctx context.Context) (ListPage, error) {
		items, err := s.store.ListItems(ctx, f)
		return ListPage{Items: items}, err
	}
	if s.caches.Lists == nil {
		return load(ctx)
	}
	return s.caches.Lists.Get(ctx, fmt.Sprintf("%s|%s|%s|%s|%d", f.Creator, f.Tag, f.Query, f.Before, f.Limit), load)
}

// changed drops what the caches hold of an item this instance just
// changed: its own copies and Redis's, so that its next read, and the
// next read of any instance missing it locally, sees the change.
func (s *Service) changed(ctx context.Context, id strata.ID) {
	if s.caches.Items != nil {
		s.caches.Items.Delete(ctx, string(id))
	}
	if s.caches.Lists != nil {
		s.caches.Lists.Clear()
	}
}

// InvalidationSubjects are the events after which every instance forgets
// what it caches of an item (see Invalidate).
const InvalidationSubjects = "content.>"

// Invalidate handles an event published by any instance (an item
// created, changed, published, deleted; its file processed by a worker):
// this instance drops its cached copy of the item, and Redis's (the
// worker that processed a file caches nothing, so every instance deletes
// it, which is idempotent), and its listings. Events of other kinds are
// ignored.
func (s *Service) Invalidate(subject string, payload []byte) {
	if !strings.HasPrefix(subject, "content.item.") && !strings.HasPrefix(subject, "content.asset.") {
		return
	}
	var e struct {
		ItemID strata.ID `json:"item_id"`
	}
	if json.Unmarshal(payload, &e) != nil || e.ItemID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.changed(ctx, e.ItemID)
}
