package content

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// maxBody bounds every content request body.
const maxBody = 64 << 10

type assetJSON struct {
	Status        AssetStatus `json:"status"`
	SHA256        string      `json:"sha256,omitempty"`
	Size          int64       `json:"size,omitempty"`
	MediaType     string      `json:"media_type,omitempty"`
	Width         int         `json:"width,omitempty"`
	Height        int         `json:"height,omitempty"`
	FailureReason string      `json:"failure_reason,omitempty"`
	Filename      string      `json:"filename,omitempty"`
	// PreviewURL is the public preview: the thumbnail of a free item,
	// the blurred preview of a paid one.
	PreviewURL string `json:"preview_url,omitempty"`
}

type itemJSON struct {
	ID          strata.ID    `json:"id"`
	CreatorID   strata.ID    `json:"creator_id"`
	Title       string       `json:"title"`
	Description string       `json:"description"`
	Price       strata.Money `json:"price"`
	Tags        []string     `json:"tags"`
	Status      Status       `json:"status"`
	Asset       *assetJSON   `json:"asset"`
	Version     int64        `json:"version"`
	CreatedAt   string       `json:"created_at"` // RFC 3339, milliseconds, UTC
	UpdatedAt   string       `json:"updated_at"`
	DeletedAt   string       `json:"deleted_at,omitempty"`
}

func (s *Service) toItemJSON(it *Item) itemJSON {
	j := itemJSON{
		ID: it.ID, CreatorID: it.CreatorID, Title: it.Title, Description: it.Description, Price: it.Price,
		Tags: it.Tags, Status: it.Status, Version: it.Version,
		CreatedAt: formatTime(it.CreatedAt), UpdatedAt: formatTime(it.UpdatedAt),
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if it.Deleted() {
		j.DeletedAt = formatTime(it.DeletedAt)
	}
	if a := it.Asset; a != nil {
		j.Asset = &assetJSON{
			Status: a.Status, SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType,
			Width: a.Width, Height: a.Height, FailureReason: a.FailureReason, Filename: a.Filename,
			PreviewURL: s.previewURL(it),
		}
	}
	return j
}

type createRequest struct {
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Price       *moneyJSON `json:"price"`
	Tags        []string   `json:"tags"`
}

// moneyJSON decodes a price strictly: both fields, no others.
type moneyJSON strata.Money

func (m *moneyJSON) UnmarshalJSON(b []byte) error {
	var v struct {
		Amount   *int64  `json:"amount"`
		Currency *string `json:"currency"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return strata.Invalid("price", "must be an object {amount: integer, currency: string}")
	}
	if v.Amount == nil || v.Currency == nil {
		return strata.Invalid("price", "must have both amount and currency")
	}
	*m = moneyJSON{Amount: *v.Amount, Currency: *v.Currency}
	return nil
}

// field is a member of a merge patch: Set when present, Null when null.
type field[T any] struct {
	Set, Null bool
	Value     T
}

func (f *field[T]) UnmarshalJSON(b []byte) error {
	f.Set = true
	if string(b) == "null" {
		f.Null = true
		return nil
	}
	return json.Unmarshal(b, &f.Value)
}

type patchRequest struct {
	Title       field[string]    `json:"title"`
	Description field[string]    `json:"description"`
	Price       field[moneyJSON] `json:"price"`
	Tags        field[[]string]  `json:"tags"`
}

// patch turns a merge patch into an ItemPatch. A null title or price is
// invalid (they are required); a null description or tags clears them.
func (r patchRequest) patch() (ItemPatch, error) {
	var p ItemPatch
	var bad []string
	if r.Title.Set {
		if r.Title.Null {
			bad = append(bad, "title", "is required")
		}
		p.Title = &r.Title.Value
	}
	if r.Price.Set {
		if r.Price.Null {
			bad = append(bad, "price", "is required")
		}
		m := strata.Money(r.Price.Value)
		p.Price = &m
	}
	if r.Description.Set {
		p.Description = &r.Description.Value // "" when null
	}
	if r.Tags.Set {
		p.Tags = &r.Tags.Value // nil when null
	}
	if len(bad) > 0 {
		return p, strata.Invalid(bad...)
	}
	return p, nil
}

func handleCreate(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusCreated, maxBody, func(ctx context.Context, req createRequest) (any, error) {
		if req.Price == nil {
			return nil, strata.Invalid("price", "is required")
		}
		it, err := s.CreateItem(ctx, NewItem{Title: req.Title, Description: req.Description, Price: strata.Money(*req.Price), Tags: req.Tags})
		if err != nil {
			return nil, err
		}
		return s.toItemJSON(it), nil
	})
}

// itemID reads the {id} of the path; a malformed id names no item.
func itemID(r *http.Request) (strata.ID, error) {
	id, err := strata.ParseID(r.PathValue("id"), PrefixItem)
	if err != nil {
		return "", errNotFound
	}
	return id, nil
}

func handleGet(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		it, err := s.Item(r.Context(), id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		body, err := s.itemBody(r.Context(), it)
		if err != nil {
			httpx.WriteError(w, r, strata.Internal(err))
			return
		}
		httpx.WriteJSONBytes(w, http.StatusOK, body)
	})
}

func handlePatch(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var req patchRequest
		if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		p, err := req.patch()
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		it, err := s.UpdateItem(r.Context(), id, p)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, s.toItemJSON(it))
	})
}

// handleTransition serves publish, unpublish and reprocess, which take no
// body and answer status with the item.
func handleTransition(s *Service, status int, fn func(context.Context, strata.ID) (*Item, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		it, err := fn(r.Context(), id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, status, s.toItemJSON(it))
	})
}

func handleDelete(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if err := s.DeleteItem(r.Context(), id); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// parseListFilter reads the query of GET /v1/items.
func parseListFilter(r *http.Request) (ListFilter, error) {
	q := r.URL.Query()
	var f ListFilter
	var err error
	if f.Limit, err = httpx.Limit(q, 0, MaxPageSize); err != nil { // 0: the service's default
		return f, err
	}
	if v := q.Get("cursor"); v != "" {
		id, err := strata.ParseID(v, PrefixItem)
		if err != nil {
			return f, strata.Invalid("cursor", "is not a cursor this endpoint returned")
		}
		f.Before = id
	}
	if v := q.Get("creator"); v != "" {
		id, err := strata.ParseID(v, "usr")
		if err != nil {
			return f, strata.Invalid("creator", "must be a user id")
		}
		f.Creator = id
	}
	if v := q.Get("tag"); v != "" {
		f.Tag = strings.ToLower(v)
		if !ValidTag(f.Tag) {
			return f, strata.Invalid("tag", "must be 1 to 32 characters of a-z, 0-9 and '-'")
		}
	}
	for _, name := range []string{"cursor", "limit", "creator", "tag", "q"} {
		if len(q[name]) > 1 {
			return f, strata.Invalid(name, "must be given at most once")
		}
	}
	if v := q.Get("q"); v != "" {
		if utf8.RuneCountInString(v) > MaxTitle || !utf8.ValidString(v) || strings.ContainsFunc(v, invisible) {
			return f, strata.Invalid("q", "must be at most 200 characters of valid UTF-8 without control characters")
		}
		f.Query = v
	}
	return f, nil
}

func handleList(s *Service) http.Handler {
	type page struct {
		Items      []itemJSON `json:"items"`
		NextCursor strata.ID  `json:"next_cursor,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := parseListFilter(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		items, next, err := s.ListItems(r.Context(), f)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		p := page{Items: make([]itemJSON, len(items)), NextCursor: next}
		for i := range items {
			p.Items[i] = s.toItemJSON(&items[i])
		}
		httpx.WriteJSON(w, http.StatusOK, p)
	})
}

// handleUpload serves PUT /v1/items/{id}/file: the body is the file's
// bytes, streamed to blob storage; its type is sniffed from them, whatever
// Content-Type says. The file's name comes from the filename parameter of
// a Content-Disposition header, or else the filename query parameter. It
// answers 202: processing goes on in the background.
func handleUpload(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		name := r.URL.Query().Get("filename")
		if cd := r.Header.Get("Content-Disposition"); cd != "" {
			_, params, err := mime.ParseMediaType(cd)
			if err != nil {
				httpx.WriteError(w, r, strata.Invalid("Content-Disposition", "is not a valid header"))
				return
			}
			name = params["filename"]
		}
		it, err := s.UploadFile(r.Context(), id, name, r.Body)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusAccepted, s.toItemJSON(it))
	})
}
