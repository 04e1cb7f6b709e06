package payments

import (
	"net/http"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
)

// Entitlement answers whether a user holds an item, on the internal API.
type Entitlement struct {
	Entitled bool `json:"entitled"`
}

// InternalRoutes registers payments' service-to-service API on mux, each
// route behind internal (httpx.RequireInternal): the entitlement check
// content instances make before a download in a split deployment.
func InternalRoutes(mux *httpx.Mux, s *Service, internal func(http.Handler) http.Handler) {
	mux.Handle("GET /internal/v1/entitlements/{user}/{item}", internal(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, err := s.Has(r.Context(), strata.ID(r.PathValue("user")), strata.ID(r.PathValue("item")))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, Entitlement{Entitled: ok})
	})))
}
