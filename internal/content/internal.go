package content

import (
	"context"
	"net/http"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// CatalogEntry is what another module needs to sell an item: served on
// the internal API to payments instances in a split deployment.
type CatalogEntry struct {
	ID        strata.ID    `json:"id"`
	CreatorID strata.ID    `json:"creator_id"`
	Price     strata.Money `json:"price"`
	Buyable   bool         `json:"buyable"` // published and not deleted
}

// Entry returns the catalog entry of an item; not_found when it does not
// exist.
func (s *Service) Entry(ctx context.Context, id strata.ID) (CatalogEntry, error) {
	it, err := s.Lookup(ctx, id)
	if err != nil {
		return CatalogEntry{}, err
	}
	return CatalogEntry{ID: it.ID, CreatorID: it.CreatorID, Price: it.Price,
		Buyable: it.Status == StatusPublished && !it.Deleted()}, nil
}

// InternalRoutes registers content's service-to-service API on mux, each
// route behind internal (httpx.RequireInternal).
func InternalRoutes(mux *httpx.Mux, s *Service, internal func(http.Handler) http.Handler) {
	mux.Handle("GET /internal/v1/catalog/{id}", internal(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := itemID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		e, err := s.Entry(r.Context(), id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, e)
	})))
}
