package content

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/stratadev/strata"
)

// Service implements the catalog's operations. It is safe for concurrent
// use; all state lives in the Store.
type Service struct {
	store        Store
	entitlements Entitlements
	clock        strata.Clock
	log          *slog.Logger
	notify       func() // wakes the outbox relay after a commit that wrote events
	cfg          Config
	blobs        Blobs // nil: uploads answer unavailable
	previews     Blobs // the previews namespace; nil: no previews served
	signer       *URLSigner
	delivery     DeliveryConfig
	cdnCache     *cdnCache
	caches       Caches
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store Store
	// Entitlements answers whether a buyer may download an item; nil means
	// NoEntitlements. Delivery uses it; the catalog does not yet.
	Entitlements Entitlements
	Clock        strata.Clock
	Logger       *slog.Logger
	// NotifyOutbox, when set, is called after a commit that wrote outbox
	// events, so the relay publishes them at once instead of at its next poll.
	NotifyOutbox func()
	// Config holds the upload settings; zero fields take their defaults.
	Config Config
	// Blobs stores uploaded files; nil disables uploads (they answer
	// unavailable), which the catalog alone does not need.
	Blobs Blobs
	// Previews is the blob namespace the AssetProcessor writes previews
	// to; nil serves none.
	Previews Blobs
	// Signer signs download URLs; nil disables downloads and /cdn/.
	Signer *URLSigner
	// Delivery holds the /cdn/ settings; zero fields take their defaults
	// (the signer carries the URL lifetime and keys).
	Delivery DeliveryConfig
	// Caches are read through when set; Invalidate keeps them current.
	Caches Caches
}

// NewService returns a Service.
func NewService(d Deps) *Service {
	s := &Service{store: d.Store, entitlements: d.Entitlements, clock: d.Clock, log: d.Logger, notify: d.NotifyOutbox,
		cfg: d.Config.withDefaults(), blobs: d.Blobs, previews: d.Previews, signer: d.Signer, delivery: d.Delivery.withDefaults(),
		caches: d.Caches}
	s.cdnCache = newCDNCache(s.delivery.CacheBytes, s.delivery.CacheObjectMaxBytes)
	if s.entitlements == nil {
		s.entitlements = NoEntitlements{}
	}
	if s.clock == nil {
		s.clock = strata.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	return s
}

// Ping checks the module's databases.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Default and largest page sizes of ListItems.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// NewItem is the input of CreateItem.
type NewItem struct {
	Title       string
	Description string
	Price       strata.Money
	Tags        []string
}

// ItemPatch is the input of UpdateItem: nil fields stay as they are.
type ItemPatch struct {
	Title       *string
	Description *string
	Price       *strata.Money
	Tags        *[]string
}

var (
	errNotFound    = &strata.Error{Code: strata.CodeNotFound, Reason: "item_not_found", Message: "no such item"}
	errNotOwner    = &strata.Error{Code: strata.CodePermissionDenied, Reason: "not_owner", Message: "only the item's creator or an admin may change it"}
	errDeleted     = &strata.Error{Code: strata.CodeConflict, Reason: "item_deleted", Message: "the item was deleted"}
	errAssetNotRdy = &strata.Error{Code: strata.CodeConflict, Reason: "asset_not_ready", Message: "the item can be published once its file is uploaded and processed"}
	errNoPrincipal = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "token_missing", Message: "a bearer access token is required"}
)

// CreateItem creates a draft item of the caller, who must be a creator or
// an admin. Errors: unauthenticated, permission_denied "role_required",
// invalid (with the fields).
func (s *Service) CreateItem(ctx context.Context, in NewItem) (*Item, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	if !p.HasRole(strata.RoleCreator) && !p.HasRole(strata.RoleAdmin) {
		return nil, &strata.Error{Code: strata.CodePermissionDenied, Reason: "role_required", Message: "this needs the role creator"}
	}
	shard, ok := p.UserID.Shard()
	if !ok {
		return nil, strata.Internal(errBadPrincipal)
	}
	in.Title = strings.TrimSpace(in.Title)
	tags, err := validate(in.Title, in.Description, in.Price, in.Tags)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	it := &Item{
		ID: strata.NewID(PrefixItem, shard, now), CreatorID: p.UserID, Title: in.Title, Description: in.Description,
		Price: in.Price, Tags: tags, Status: StatusDraft, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	err = s.store.Tx(ctx, shard, func(tx Tx) error {
		if err := tx.InsertItem(ctx, it); err != nil {
			return err
		}
		ev, err := itemEvent(SubjectItemCreated, it, map[string]any{
			"title": it.Title, "description": it.Description, "price": it.Price, "tags": it.Tags, "status": it.Status,
		})
		if err != nil {
			return err
		}
		return tx.Outbox(ctx, ev)
	})
	if err != nil {
		return nil, err
	}
	s.changed(ctx, it.ID)
	s.notify()
	return it, nil
}

var errBadPrincipal = strata.Errorf(strata.CodeInternal, "bad_principal", "the principal's user id is malformed")

// validate checks every field of an item and returns its normalized tags.
// It reports all invalid fields at once.
func validate(title, description string, price strata.Money, tags []string) ([]string, error) {
	var fields []string
	add := func(err error) {
		if se, ok := err.(*strata.Error); ok {
			for _, f := range se.Fields {
				fields = append(fields, f.Field, f.Message)
			}
		}
	}
	add(validateTitle(title))
	add(validateDescription(description))
	add(price.Validate("price"))
	norm, err := NormalizeTags(tags)
	add(err)
	if len(fields) > 0 {
		return nil, strata.Invalid(fields...)
	}
	return norm, nil
}

// Item returns an item as the caller may see it: drafts, unpublished and
// deleted items only to their creator and admins. Errors: not_found
// "item_not_found".
func (s *Service) Item(ctx context.Context, id strata.ID) (*Item, error) {
	it, err := s.itemByID(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if !mayManage(ctx, it) && (it.Status != StatusPublished || it.Deleted()) {
		return nil, errNotFound
	}
	return it, nil
}

// mayManage reports whether the caller is the item's creator or an admin.
// Lookup returns an item whatever its state and whoever asks: the view
// other modules get through their interfaces (payments asks prices), not
// an API read. Errors: not_found "item_not_found", unavailable.
func (s *Service) Lookup(ctx context.Context, id strata.ID) (*Item, error) {
	if _, ok := id.Shard(); !ok {
		return nil, errNotFound
	}
	it, err := s.itemByID(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errNotFound
	}
	return it, err
}

func mayManage(ctx context.Context, it *Item) bool {
	p := strata.PrincipalFrom(ctx)
	return p != nil && (p.UserID == it.CreatorID || p.HasRole(strata.RoleAdmin))
}

// manage runs fn on the item, locked in a transaction of its shard, once
// the caller is known to be allowed to change it (its creator or an
// admin), and wakes the outbox relay when fn reports it wrote an event.
// Errors: unauthenticated, not_found "item_not_found", permission_denied
// "not_owner" (whether or not the caller may see the item — the issue asks
// for 403 for anyone but the owner and admins; ids are unguessable), and
// fn's own.
func (s *Service) manage(ctx context.Context, id strata.ID, fn func(tx Tx, it *Item) (wrote bool, err error)) (*Item, error) {
	if strata.PrincipalFrom(ctx) == nil {
		return nil, errNoPrincipal
	}
	shard, ok := id.Shard()
	if !ok {
		return nil, errNotFound
	}
	var out *Item
	wrote := false
	err := s.store.Tx(ctx, shard, func(tx Tx) error {
		it, err := tx.ItemForUpdate(ctx, id)
		if strata.ErrorCode(err) == strata.CodeNotFound {
			return errNotFound
		}
		if err != nil {
			return err
		}
		if !mayManage(ctx, it) {
			return errNotOwner
		}
		out = it
		wrote, err = fn(tx, it)
		return err
	})
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errNotFound // also an id on a shard beyond the deployment
	}
	if err != nil {
		return nil, err
	}
	s.changed(ctx, id)
	if wrote {
		s.notify()
	}
	return out, nil
}

// change runs fn on the item (see manage). fn changes the item and returns
// the event subject and changed fields, or "" when nothing changed; the
// version and update time are then bumped, the item written and the event
// recorded.
func (s *Service) change(ctx context.Context, id strata.ID, fn func(it *Item) (string, map[string]any, error)) (*Item, error) {
	return s.manage(ctx, id, func(tx Tx, it *Item) (bool, error) {
		subject, changed, err := fn(it)
		if err != nil || subject == "" {
			return false, err
		}
		it.Version++
		it.UpdatedAt = s.clock.Now().UTC()
		if err := tx.UpdateItem(ctx, it); err != nil {
			return false, err
		}
		ev, err := itemEvent(subject, it, changed)
		if err != nil {
			return false, err
		}
		return true, tx.Outbox(ctx, ev)
	})
}

// UpdateItem changes the fields p sets. Errors: those of change, conflict
// "item_deleted", invalid (with the fields).
func (s *Service) UpdateItem(ctx context.Context, id strata.ID, p ItemPatch) (*Item, error) {
	return s.change(ctx, id, func(it *Item) (string, map[string]any, error) {
		if it.Deleted() {
			return "", nil, errDeleted
		}
		title, desc, price, tags := it.Title, it.Description, it.Price, it.Tags
		if p.Title != nil {
			title = strings.TrimSpace(*p.Title)
		}
		if p.Description != nil {
			desc = *p.Description
		}
		if p.Price != nil {
			price = *p.Price
		}
		if p.Tags != nil {
			tags = *p.Tags
		}
		tags, err := validate(title, desc, price, tags)
		if err != nil {
			return "", nil, err
		}
		changed := map[string]any{}
		if title != it.Title {
			it.Title, changed["title"] = title, title
		}
		if desc != it.Description {
			it.Description, changed["description"] = desc, desc
		}
		if price != it.Price {
			it.Price, changed["price"] = price, price
		}
		if !slices.Equal(tags, it.Tags) {
			it.Tags, changed["tags"] = tags, tags
		}
		if len(changed) == 0 {
			return "", nil, nil
		}
		return SubjectItemUpdated, changed, nil
	})
}

// Publish shows an item in the catalog; publishing a published item does
// nothing. Errors: those of change, conflict "item_deleted" and
// "asset_not_ready".
func (s *Service) Publish(ctx context.Context, id strata.ID) (*Item, error) {
	return s.change(ctx, id, func(it *Item) (string, map[string]any, error) {
		switch {
		case it.Deleted():
			return "", nil, errDeleted
		case it.Status == StatusPublished:
			return "", nil, nil
		case it.Asset == nil || it.Asset.Status != AssetReady:
			return "", nil, errAssetNotRdy
		}
		it.Status = StatusPublished
		return SubjectItemPublished, map[string]any{"status": it.Status}, nil
	})
}

// Unpublish hides a published item from the catalog; on an item that is
// not published it does nothing. Errors: those of change, conflict
// "item_deleted".
func (s *Service) Unpublish(ctx context.Context, id strata.ID) (*Item, error) {
	return s.change(ctx, id, func(it *Item) (string, map[string]any, error) {
		switch {
		case it.Deleted():
			return "", nil, errDeleted
		case it.Status != StatusPublished:
			return "", nil, nil
		}
		it.Status = StatusUnpublished
		return SubjectItemUnpublished, map[string]any{"status": it.Status}, nil
	})
}

// DeleteItem soft-deletes an item; deleting it again does nothing. Errors:
// those of change.
func (s *Service) DeleteItem(ctx context.Context, id strata.ID) error {
	_, err := s.change(ctx, id, func(it *Item) (string, map[string]any, error) {
		if it.Deleted() {
			return "", nil, nil
		}
		it.DeletedAt = s.clock.Now().UTC()
		return SubjectItemDeleted, map[string]any{"deleted_at": formatTime(it.DeletedAt)}, nil
	})
	return err
}

// ListItems returns a page of published items, newest first, and the
// cursor of the next page ("" on the last). f.Limit is the page size
// (0: DefaultPageSize). Errors: invalid naming "limit".
func (s *Service) ListItems(ctx context.Context, f ListFilter) ([]Item, strata.ID, error) {
	if f.Limit == 0 {
		f.Limit = DefaultPageSize
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return nil, "", strata.Invalid("limit", "must be between 1 and 100")
	}
	page := f.Limit
	f.Limit = page + 1 // one more says whether a next page exists
	p, err := s.listItems(ctx, f)
	if err != nil {
		return nil, "", err
	}
	items := p.Items
	if len(items) <= page {
		return items, "", nil
	}
	items = items[:page]
	return items, items[page-1].ID, nil
}
