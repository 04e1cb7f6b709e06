package payments

import (
	"context"
	"net/http"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/payments/provider"
)

// maxBody bounds every payments request body.
const maxBody = 16 << 10

// Page sizes of the lists.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Routes registers the payments routes on mux; every route needs a bearer
// token that verifier accepts. wrapPost wraps the mutating routes (the
// Idempotency-Key middleware in cmd/strata); nil means none.
func Routes(mux *httpx.Mux, s *Service, verifier httpx.TokenVerifier, wrapPost func(http.Handler) http.Handler) {
	if wrapPost == nil {
		wrapPost = func(h http.Handler) http.Handler { return h }
	}
	user := func(h http.Handler) http.Handler {
		return httpx.Chain(h, httpx.Authenticate(verifier), httpx.RequireAuth())
	}
	mux.Handle("POST /v1/purchases", user(wrapPost(handleBuy(s))))
	mux.Handle("GET /v1/purchases", user(handlePurchases(s)))
	mux.Handle("GET /v1/wallet", user(handleWallet(s)))
	mux.Handle("POST /v1/purchases/{id}/refund", user(wrapPost(handleRefund(s))))
	mux.Handle("GET /v1/ledger/transfers", user(handleTransfers(s)))
	mux.Handle("POST /v1/topups", user(wrapPost(handleTopUp(s))))
	mux.Handle("GET /v1/topups/{id}", user(handleIntent(s)))
	mux.Handle("POST /v1/topups/{id}/confirm", user(wrapPost(handleRetry(s))))
	mux.Handle("POST /v1/topups/{id}/cancel", user(wrapPost(handleCancel(s))))
}

type intentJSON struct {
	ID          strata.ID    `json:"id"`
	UserID      strata.ID    `json:"user_id"`
	Amount      strata.Money `json:"amount"`
	Status      IntentStatus `json:"status"`
	FailureCode string       `json:"failure_code,omitempty"`
	Attempt     int          `json:"attempt"`
	Card        struct {
		Brand string `json:"brand"`
		Last4 string `json:"last4"`
	} `json:"card"`
	TransferID strata.ID `json:"transfer_id,omitempty"`
	CreatedAt  string    `json:"created_at"`
	UpdatedAt  string    `json:"updated_at"`
}

func toIntentJSON(in *Intent) intentJSON {
	j := intentJSON{ID: in.ID, UserID: in.UserID, Amount: in.Amount, Status: in.Status, FailureCode: in.FailureCode,
		Attempt: in.Attempt, TransferID: in.TransferID, CreatedAt: formatTime(in.CreatedAt), UpdatedAt: formatTime(in.UpdatedAt)}
	j.Card.Brand, j.Card.Last4 = in.CardBrand, in.CardLast4
	return j
}

// cardJSON is the card of a request; it is never stored or logged.
type cardJSON struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	CVC      string `json:"cvc"`
}

func (c cardJSON) card() provider.Card {
	return provider.Card{Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, CVC: c.CVC}
}

type topUpRequest struct {
	Amount *strata.Money `json:"amount"`
	Card   *cardJSON     `json:"card"`
}

func handleTopUp(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusCreated, maxBody, func(ctx context.Context, req topUpRequest) (any, error) {
		if err := strata.Required("amount", present(req.Amount != nil), "card", present(req.Card != nil)); err != nil {
			return nil, err
		}
		in, err := s.TopUp(ctx, *req.Amount, req.Card.card())
		if err != nil {
			return nil, err
		}
		return toIntentJSON(in), nil
	})
}

// present is Required's notion of a value for an optional object.
func present(ok bool) string {
	if ok {
		return "present"
	}
	return ""
}

func intentID(r *http.Request) strata.ID { return strata.ID(r.PathValue("id")) }

func handleIntent(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.IntentOf(r.Context(), intentID(r))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toIntentJSON(in))
	})
}

type retryRequest struct {
	Card *cardJSON `json:"card"`
}

func handleRetry(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := intentID(r)
		httpx.JSONHandler(http.StatusOK, maxBody, func(ctx context.Context, req retryRequest) (any, error) {
			if req.Card == nil {
				return nil, strata.Invalid("card", "is required")
			}
			in, err := s.Retry(ctx, id, req.Card.card())
			if err != nil {
				return nil, err
			}
			return toIntentJSON(in), nil
		}).ServeHTTP(w, r)
	})
}

func handleCancel(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.Cancel(r.Context(), intentID(r))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toIntentJSON(in))
	})
}

type purchaseJSON struct {
	ID         strata.ID    `json:"id"`
	BuyerID    strata.ID    `json:"buyer_id"`
	ItemID     strata.ID    `json:"item_id"`
	CreatorID  strata.ID    `json:"creator_id"`
	Price      strata.Money `json:"price"`
	Fee        strata.Money `json:"fee"`
	Status     string       `json:"status"`
	Settlement string       `json:"settlement"`
	CreatedAt  string       `json:"created_at"`
	RefundedAt string       `json:"refunded_at,omitempty"`
	// RefundReason is set when the purchase was refunded without anyone
	// asking: credit_failed.
	RefundReason string `json:"refund_reason,omitempty"`
}

func toPurchaseJSON(p *Purchase) purchaseJSON {
	j := purchaseJSON{ID: p.ID, BuyerID: p.BuyerID, ItemID: p.ItemID, CreatorID: p.CreatorID, Price: p.Price,
		Fee: strata.Money{Amount: p.Fee, Currency: p.Price.Currency}, Status: string(p.Status),
		Settlement: string(p.Settlement.OrLocal()), CreatedAt: formatTime(p.CreatedAt), RefundReason: p.RefundReason}
	if !p.RefundedAt.IsZero() {
		j.RefundedAt = formatTime(p.RefundedAt)
	}
	return j
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

type buyRequest struct {
	ItemID strata.ID `json:"item_id"`
}

func handleBuy(s *Service) http.Handler {
	return httpx.JSONHandler(http.StatusCreated, maxBody, func(ctx context.Context, req buyRequest) (any, error) {
		if req.ItemID == "" {
			return nil, strata.Invalid("item_id", "is required")
		}
		p, err := s.Buy(ctx, req.ItemID)
		if err != nil {
			return nil, err
		}
		return toPurchaseJSON(p), nil
	})
}

// subject is the user a read is about: ?user= for admins, else the caller.
func subject(r *http.Request) strata.ID {
	if u := r.URL.Query().Get("user"); u != "" {
		return strata.ID(u)
	}
	if p := strata.PrincipalFrom(r.Context()); p != nil {
		return p.UserID
	}
	return ""
}

func handleWallet(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wl, err := s.WalletOf(r.Context(), subject(r))
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, struct {
			Balances []balanceJSON `json:"balances"`
			Earnings []balanceJSON `json:"earnings"`
		}{balances(wl.Balances), balances(wl.Earnings)})
	})
}

// balanceJSON is one currency of a wallet: what is available, in minor
// units.
type balanceJSON struct {
	Currency  string `json:"currency"`
	Available int64  `json:"available"`
}

func balances(ms []strata.Money) []balanceJSON {
	out := make([]balanceJSON, len(ms))
	for i, m := range ms {
		out[i] = balanceJSON{Currency: m.Currency, Available: m.Amount}
	}
	return out
}

// pageParams reads cursor and limit.
func pageParams(r *http.Request) (strata.ID, int, error) {
	q := r.URL.Query()
	limit, err := httpx.Limit(q, DefaultPageSize, MaxPageSize)
	return strata.ID(q.Get("cursor")), limit, err
}

func handlePurchases(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cursor, limit, err := pageParams(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		ps, err := s.PurchasesOf(r.Context(), subject(r), cursor, limit+1)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		page := struct {
			Purchases  []purchaseJSON `json:"purchases"`
			NextCursor strata.ID      `json:"next_cursor,omitempty"`
		}{Purchases: []purchaseJSON{}}
		if len(ps) > limit {
			ps = ps[:limit]
			page.NextCursor = ps[limit-1].ID
		}
		for i := range ps {
			page.Purchases = append(page.Purchases, toPurchaseJSON(&ps[i]))
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}

type refundRequest struct {
	Force bool `json:"force"`
}

// handleRefund serves POST /v1/purchases/{id}/refund; the body is
// optional ({"force": true} for admins).
func handleRefund(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req refundRequest
		if r.ContentLength != 0 {
			if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
		}
		p, err := s.Refund(r.Context(), strata.ID(r.PathValue("id")), req.Force)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, toPurchaseJSON(p))
	})
}

// entryJSON is one entry of a listed transfer. Another user's account is
// shown by kind only (a creator does not learn a buyer's account id), to
// anyone but an admin.
type entryJSON struct {
	AccountID   strata.ID `json:"account_id,omitempty"`
	AccountKind string    `json:"account_kind"`
	Amount      int64     `json:"amount"`
}

type transferJSON struct {
	ID         strata.ID   `json:"id"`
	Type       string      `json:"type"`
	Currency   string      `json:"currency"`
	Amount     int64       `json:"amount"`
	IntentID   strata.ID   `json:"intent_id,omitempty"`
	PurchaseID strata.ID   `json:"purchase_id,omitempty"`
	ItemID     strata.ID   `json:"item_id,omitempty"`
	ReversesID strata.ID   `json:"reverses_id,omitempty"`
	Entries    []entryJSON `json:"entries"`
	CreatedAt  string      `json:"created_at"`
}

func handleTransfers(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cursor, limit, err := pageParams(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		ts, err := s.TransfersOf(r.Context(), subject(r), strata.ID(r.URL.Query().Get("account")), cursor, limit+1)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var caller strata.ID
		admin := false
		if p := strata.PrincipalFrom(r.Context()); p != nil {
			caller, admin = p.UserID, p.HasRole(strata.RoleAdmin)
		}
		page := struct {
			Transfers  []transferJSON `json:"transfers"`
			NextCursor strata.ID      `json:"next_cursor,omitempty"`
		}{Transfers: []transferJSON{}}
		if len(ts) > limit {
			ts = ts[:limit]
			page.NextCursor = ts[limit-1].ID
		}
		for _, t := range ts {
			j := transferJSON{ID: t.ID, Type: string(t.Type), Currency: t.Currency, Amount: t.Amount, IntentID: t.IntentID,
				PurchaseID: t.PurchaseID, ItemID: t.ItemID, ReversesID: t.ReversesID, Entries: []entryJSON{}, CreatedAt: formatTime(t.CreatedAt)}
			for _, e := range t.Entries {
				ej := entryJSON{AccountKind: string(e.Kind), Amount: e.Amount}
				if admin || (e.Owner != "" && e.Owner == caller) {
					ej.AccountID = e.Account
				}
				j.Entries = append(j.Entries, ej)
			}
			page.Transfers = append(page.Transfers, j)
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}
