package provider_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// newProvider returns a TestProvider configured by cfg on clock.
func newProvider(t *testing.T, cfg provider.TestConfig, clock strata.Clock) *provider.TestProvider {
	t.Helper()
	p, err := provider.NewTestProvider(cfg, clock)
	require.NoError(t, err)
	return p
}

// request returns a valid request charging 19.99 USD to number.
func request(key, number string) provider.ChargeRequest {
	return provider.ChargeRequest{
		IdempotencyKey: key,
		Amount:         strata.Money{Amount: 1999, Currency: "USD"},
		Card:           validCard(number),
	}
}

var chargeIDPattern = regexp.MustCompile(`^ch_[0-9a-hjkmnp-tv-z]{32}$`)

func TestTestCards(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, number string
		status       provider.ChargeStatus
		failure      string
		brand, last4 string
	}{
		{"succeeds", provider.TestCardSucceeds, provider.ChargeSucceeded, "", "visa", "4242"},
		{"declined", provider.TestCardDeclined, provider.ChargeFailed, provider.FailureCardDeclined, "visa", "0002"},
		{"insufficient funds", provider.TestCardInsufficientFunds, provider.ChargeFailed, provider.FailureInsufficientFunds, "visa", "9995"},
		{"processing error", provider.TestCardProcessingError, provider.ChargeFailed, provider.FailureProcessingError, "visa", "0119"},
		{"async", provider.TestCardAsync, provider.ChargePending, "", "visa", "0259"},
		{"expired", provider.TestCardExpired, provider.ChargeFailed, provider.FailureExpiredCard, "visa", "0069"},
		{"incorrect cvc", provider.TestCardIncorrectCVC, provider.ChargeFailed, provider.FailureIncorrectCVC, "visa", "0127"},
		{"declined, spaced", "4000 0000 0000 0002", provider.ChargeFailed, provider.FailureCardDeclined, "visa", "0002"},
		{"async, dashed", "4000-0000-0000-0259", provider.ChargePending, "", "visa", "0259"},
		{"other visa", "4000056655665556", provider.ChargeSucceeded, "", "visa", "5556"},
		{"mastercard", "5555555555554444", provider.ChargeSucceeded, "", "mastercard", "4444"},
		{"amex", "378282246310005", provider.ChargeSucceeded, "", "amex", "0005"},
		{"discover", "6011111111111117", provider.ChargeSucceeded, "", "discover", "1117"},
		{"unknown brand", "3056930009020004", provider.ChargeSucceeded, "", "unknown", "0004"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, provider.TestConfig{}, stratatest.NewClock(testNow))
			ch, err := p.Charge(t.Context(), request("pi_"+tc.name, tc.number))
			require.NoError(t, err)
			require.Regexp(t, chargeIDPattern, ch.ID)
			require.Equal(t, provider.Charge{
				ID: ch.ID, Status: tc.status, FailureCode: tc.failure,
				Brand: tc.brand, Last4: tc.last4, Created: testNow,
			}, ch)
			got, err := p.Retrieve(t.Context(), ch.ID)
			require.NoError(t, err)
			require.Equal(t, ch, got)
		})
	}
}

func TestChargeValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(*provider.ChargeRequest)
		fields map[string]string
	}{
		{"zero amount", func(r *provider.ChargeRequest) { r.Amount.Amount = 0 }, map[string]string{"amount": "must be positive"}},
		{"negative amount", func(r *provider.ChargeRequest) { r.Amount.Amount = -100 }, map[string]string{"amount": "must be positive"}},
		{"lowercase currency", func(r *provider.ChargeRequest) { r.Amount.Currency = "usd" }, map[string]string{"currency": "must be three capital letters"}},
		{"short currency", func(r *provider.ChargeRequest) { r.Amount.Currency = "US" }, map[string]string{"currency": "must be three capital letters"}},
		{"currency with digit", func(r *provider.ChargeRequest) { r.Amount.Currency = "US1" }, map[string]string{"currency": "must be three capital letters"}},
		{"no currency", func(r *provider.ChargeRequest) { r.Amount.Currency = "" }, map[string]string{"currency": "must be three capital letters"}},
		{"no key", func(r *provider.ChargeRequest) { r.IdempotencyKey = "" }, map[string]string{"idempotency_key": "is required"}},
		{"long key", func(r *provider.ChargeRequest) { r.IdempotencyKey = strings.Repeat("k", 256) }, map[string]string{"idempotency_key": "must be at most 255 bytes"}},
		{"bad number", func(r *provider.ChargeRequest) { r.Card.Number = "4242424242424241" }, map[string]string{"card.number": "is not a valid card number"}},
		{"expired card", func(r *provider.ChargeRequest) { r.Card.ExpMonth, r.Card.ExpYear = 2, 2026 }, map[string]string{"card.exp_year": "the card has expired"}},
		{"everything", func(r *provider.ChargeRequest) {
			*r = provider.ChargeRequest{Card: provider.Card{Number: "4242424242424241"}}
		}, map[string]string{
			"idempotency_key": "is required", "amount": "must be positive", "currency": "must be three capital letters",
			"card.number": "is not a valid card number", "card.exp_month": "must be between 1 and 12",
			"card.exp_year": "must have four digits", "card.cvc": "must be 3 or 4 digits",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := stratatest.NewClock(testNow)
			p := newProvider(t, provider.TestConfig{}, clock)
			req := request("pi_1", provider.TestCardSucceeds)
			tc.edit(&req)
			_, err := p.Charge(t.Context(), req)
			require.Equal(t, tc.fields, fieldErrors(t, err))
			require.NotContains(t, err.Error(), "42424242")
			// A refused request uses up nothing: the key still charges.
			clock.Advance(time.Second)
			ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
			require.NoError(t, err)
			require.Equal(t, testNow.Add(time.Second), ch.Created)
		})
	}
	require.Len(t, strings.Repeat("k", provider.MaxIdempotencyKeyLen), 255)
}

func TestChargeIsIdempotent(t *testing.T) {
	t.Parallel()
	clock := stratatest.NewClock(testNow)
	p := newProvider(t, provider.TestConfig{}, clock)
	ctx := t.Context()

	first, err := p.Charge(ctx, request("pi_a", provider.TestCardSucceeds))
	require.NoError(t, err)
	clock.Advance(time.Minute)
	again, err := p.Charge(ctx, request("pi_a", provider.TestCardSucceeds))
	require.NoError(t, err)
	require.Equal(t, first, again, "the same key is the same charge")

	// The spelling of the number and the CVC do not make another charge.
	spaced := request("pi_a", "4242 4242 4242 4242")
	spaced.Card.CVC = "999"
	again, err = p.Charge(ctx, spaced)
	require.NoError(t, err)
	require.Equal(t, first, again)

	// A declined charge is replayed too: the key is spent.
	declined, err := p.Charge(ctx, request("pi_b", provider.TestCardDeclined))
	require.NoError(t, err)
	again, err = p.Charge(ctx, request("pi_b", provider.TestCardDeclined))
	require.NoError(t, err)
	require.Equal(t, declined, again)

	other, err := p.Charge(ctx, request("pi_c", provider.TestCardSucceeds))
	require.NoError(t, err)
	require.NotEqual(t, first.ID, other.ID)

	for name, edit := range map[string]func(*provider.ChargeRequest){
		"amount":    func(r *provider.ChargeRequest) { r.Amount.Amount++ },
		"currency":  func(r *provider.ChargeRequest) { r.Amount.Currency = "EUR" },
		"card":      func(r *provider.ChargeRequest) { r.Card.Number = "5555555555554444" },
		"exp_month": func(r *provider.ChargeRequest) { r.Card.ExpMonth = 11 },
		"exp_year":  func(r *provider.ChargeRequest) { r.Card.ExpYear = 2031 },
	} {
		req := request("pi_a", provider.TestCardSucceeds)
		edit(&req)
		_, err := p.Charge(ctx, req)
		require.Equal(t, strata.CodeConflict, strata.ErrorCode(err), name)
		require.Equal(t, "idempotency_key_reused", strata.ErrorReason(err), name)
	}
}

func TestChargeIsIdempotentUnderConcurrency(t *testing.T) {
	t.Parallel()
	p := newProvider(t, provider.TestConfig{Latency: time.Millisecond, Jitter: time.Millisecond}, nil)
	var wg sync.WaitGroup
	ids := make([]string, 32)
	for i := range ids {
		wg.Go(func() {
			ch, err := p.Charge(context.Background(), request("pi_same", provider.TestCardSucceeds))
			if err == nil {
				ids[i] = ch.ID
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	require.NotEmpty(t, ids[0])
}

func TestIdempotencyKeysAreForgotten(t *testing.T) {
	t.Parallel()
	t.Run("after KeyTTL", func(t *testing.T) {
		t.Parallel()
		clock := stratatest.NewClock(testNow)
		p := newProvider(t, provider.TestConfig{KeyTTL: time.Hour}, clock)
		first, err := p.Charge(t.Context(), request("pi_a", provider.TestCardSucceeds))
		require.NoError(t, err)
		clock.Advance(time.Hour - time.Millisecond)
		again, err := p.Charge(t.Context(), request("pi_a", provider.TestCardSucceeds))
		require.NoError(t, err)
		require.Equal(t, first, again)
		clock.Advance(time.Millisecond)
		again, err = p.Charge(t.Context(), request("pi_a", provider.TestCardSucceeds))
		require.NoError(t, err)
		require.NotEqual(t, first.ID, again.ID)
		require.Equal(t, testNow.Add(time.Hour), again.Created)
	})
	t.Run("beyond MaxKeys, oldest first", func(t *testing.T) {
		t.Parallel()
		clock := stratatest.NewClock(testNow)
		p := newProvider(t, provider.TestConfig{MaxKeys: 2}, clock)
		charge := func(key string) provider.Charge {
			t.Helper()
			ch, err := p.Charge(t.Context(), request(key, provider.TestCardSucceeds))
			require.NoError(t, err)
			return ch
		}
		a, b := charge("pi_a"), charge("pi_b")
		clock.Advance(time.Second)
		require.Equal(t, a, charge("pi_a"))
		c := charge("pi_c") // forgets pi_a
		clock.Advance(time.Second)
		require.Equal(t, b, charge("pi_b"))
		require.Equal(t, c, charge("pi_c"))
		require.NotEqual(t, a.ID, charge("pi_a").ID)
	})
}

func TestAsyncChargeConfirmsLater(t *testing.T) {
	t.Parallel()
	clock := stratatest.NewClock(testNow)
	cfg := provider.TestConfig{ConfirmAfter: 5 * time.Second}
	p := newProvider(t, cfg, clock)
	// worker stands for another process: it shares nothing with p.
	worker := newProvider(t, cfg, clock)
	ctx := t.Context()

	ch, err := p.Charge(ctx, request("pi_async", provider.TestCardAsync))
	require.NoError(t, err)
	require.Equal(t, provider.ChargePending, ch.Status)

	clock.Advance(5*time.Second - time.Millisecond)
	got, err := worker.Retrieve(ctx, ch.ID)
	require.NoError(t, err)
	require.Equal(t, ch, got)

	clock.Advance(time.Millisecond)
	got, err = worker.Retrieve(ctx, ch.ID)
	require.NoError(t, err)
	want := ch
	want.Status = provider.ChargeSucceeded
	require.Equal(t, want, got)

	// A retry of the charge reports its current state.
	again, err := p.Charge(ctx, request("pi_async", provider.TestCardAsync))
	require.NoError(t, err)
	require.Equal(t, want, again)
}

func TestAsyncChargeDefaultConfirmAfter(t *testing.T) {
	t.Parallel()
	clock := stratatest.NewClock(testNow)
	p := newProvider(t, provider.TestConfig{}, clock)
	ch, err := p.Charge(t.Context(), request("pi_async", provider.TestCardAsync))
	require.NoError(t, err)
	clock.Advance(provider.DefaultConfirmAfter - time.Millisecond)
	got, err := newProvider(t, provider.TestConfig{}, clock).Retrieve(t.Context(), ch.ID)
	require.NoError(t, err)
	require.Equal(t, provider.ChargePending, got.Status)
	clock.Advance(time.Millisecond)
	got, err = newProvider(t, provider.TestConfig{}, clock).Retrieve(t.Context(), ch.ID)
	require.NoError(t, err)
	require.Equal(t, provider.ChargeSucceeded, got.Status)
}

func TestRetrieveRefusesUnknownIDs(t *testing.T) {
	t.Parallel()
	p := newProvider(t, provider.TestConfig{}, stratatest.NewClock(testNow))
	ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardDeclined))
	require.NoError(t, err)
	body := strings.TrimPrefix(ch.ID, "ch_")

	bad := map[string]string{
		"empty":       "",
		"prefix only": "ch_",
		"other kind":  "pi_" + body,
		"no prefix":   body,
		"uppercase":   "ch_" + strings.ToUpper(body),
		"truncated":   ch.ID[:len(ch.ID)-1],
		"extended":    ch.ID + "0",
		"newline":     ch.ID[:10] + "\n" + ch.ID[11:],
		"all zeros":   "ch_" + strings.Repeat("0", 32),
		"a strata id": string(strata.NewID("ch", 0, testNow)),
		"bad letter":  "ch_" + "u" + body[1:],
		"padding":     ch.ID[:len(ch.ID)-1] + "=",
		"injection":   "ch_' OR 1=1 --",
	}
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	for i := range body {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, body[i])+1)%32], alphabet[(strings.IndexByte(alphabet, body[i])+17)%32]} {
			bad[fmt.Sprintf("char %d to %c", i, c)] = "ch_" + body[:i] + string(c) + body[i+1:]
		}
	}
	for name, id := range bad {
		_, err := p.Retrieve(t.Context(), id)
		require.Equal(t, strata.CodeNotFound, strata.ErrorCode(err), name)
		require.Equal(t, "no_such_charge", strata.ErrorReason(err), name)
	}
	got, err := p.Retrieve(t.Context(), ch.ID)
	require.NoError(t, err)
	require.Equal(t, ch, got)
}

func TestLatency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, provider.TestConfig{Latency: 200 * time.Millisecond}, nil)
		start := time.Now()
		ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
		require.NoError(t, err)
		require.Equal(t, 200*time.Millisecond, time.Since(start))
		require.Equal(t, start.Add(100*time.Millisecond).UnixMilli(), ch.Created.UnixMilli(), "charged halfway")

		start = time.Now()
		_, err = p.Retrieve(t.Context(), ch.ID)
		require.NoError(t, err)
		require.Equal(t, 200*time.Millisecond, time.Since(start))
	})
}

func TestJitter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, provider.TestConfig{Latency: 100 * time.Millisecond, Jitter: 50 * time.Millisecond}, nil)
		seen := map[time.Duration]bool{}
		for i := range 50 {
			start := time.Now()
			_, err := p.Charge(t.Context(), request(fmt.Sprint("pi_", i), provider.TestCardSucceeds))
			require.NoError(t, err)
			d := time.Since(start)
			require.GreaterOrEqual(t, d, 100*time.Millisecond)
			require.LessOrEqual(t, d, 150*time.Millisecond)
			seen[d] = true
		}
		require.Greater(t, len(seen), 1, "the latency varies")
	})
}

func TestContextEndsDuringLatency(t *testing.T) {
	t.Parallel()
	cfg := provider.TestConfig{Latency: time.Second}
	t.Run("before the charge is made", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := newProvider(t, cfg, nil)
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(300*time.Millisecond, cancel)
			start := time.Now()
			_, err := p.Charge(ctx, request("pi_1", provider.TestCardSucceeds))
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, 300*time.Millisecond, time.Since(start), "returns when the context ends")

			// Nothing was charged: the retry makes the charge now.
			retried := time.Now()
			ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
			require.NoError(t, err)
			require.Equal(t, retried.Add(500*time.Millisecond).UnixMilli(), ch.Created.UnixMilli())
		})
	})
	t.Run("after the charge is made", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := newProvider(t, cfg, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := p.Charge(ctx, request("pi_1", provider.TestCardSucceeds))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Equal(t, 700*time.Millisecond, time.Since(start))

			// The card was charged: the retry learns of that charge.
			ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
			require.NoError(t, err)
			require.Equal(t, start.Add(500*time.Millisecond).UnixMilli(), ch.Created.UnixMilli())
		})
	})
	t.Run("retrieve", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := newProvider(t, cfg, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
			defer cancel()
			_, err := p.Retrieve(ctx, "ch_x")
			require.ErrorIs(t, err, context.DeadlineExceeded)
		})
	})
	t.Run("already ended", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, provider.TestConfig{}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := p.Charge(ctx, request("pi_1", provider.TestCardSucceeds))
		require.ErrorIs(t, err, context.Canceled)
		_, err = p.Retrieve(ctx, "ch_x")
		require.ErrorIs(t, err, context.Canceled)
	})
}

// script fails the listed operations once each, in order, and records
// every operation it sees.
type script struct {
	mu    sync.Mutex
	fails []string
	seen  []string
}

var errScripted = errors.New("scripted outage")

func (s *script) fail(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, op)
	if len(s.fails) > 0 && s.fails[0] == op {
		s.fails = s.fails[1:]
		return errScripted
	}
	return nil
}

func TestFailFunc(t *testing.T) {
	t.Parallel()
	requireUnavailable := func(t *testing.T, err error) {
		t.Helper()
		require.Equal(t, strata.CodeUnavailable, strata.ErrorCode(err))
		require.Equal(t, "provider_unavailable", strata.ErrorReason(err))
		require.ErrorIs(t, err, errScripted)
	}
	t.Run("request lost", func(t *testing.T) {
		t.Parallel()
		clock := stratatest.NewClock(testNow)
		s := &script{fails: []string{provider.OpCharge}}
		p := newProvider(t, provider.TestConfig{FailFunc: s.fail}, clock)
		_, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
		requireUnavailable(t, err)
		clock.Advance(time.Second)
		ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
		require.NoError(t, err)
		require.Equal(t, testNow.Add(time.Second), ch.Created, "the first attempt charged nothing")
		require.Equal(t, []string{provider.OpCharge, provider.OpCharge, provider.OpChargeReply}, s.seen)
	})
	t.Run("reply lost", func(t *testing.T) {
		t.Parallel()
		clock := stratatest.NewClock(testNow)
		s := &script{fails: []string{provider.OpChargeReply}}
		p := newProvider(t, provider.TestConfig{FailFunc: s.fail}, clock)
		_, err := p.Charge(t.Context(), request("pi_1", provider.TestCardDeclined))
		requireUnavailable(t, err)
		clock.Advance(time.Second)
		ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardDeclined))
		require.NoError(t, err)
		require.Equal(t, testNow, ch.Created, "the first attempt made the charge")
		require.Equal(t, provider.FailureCardDeclined, ch.FailureCode)
	})
	t.Run("retrieve", func(t *testing.T) {
		t.Parallel()
		s := &script{fails: []string{provider.OpRetrieve}}
		p := newProvider(t, provider.TestConfig{FailFunc: s.fail}, stratatest.NewClock(testNow))
		ch, err := p.Charge(t.Context(), request("pi_1", provider.TestCardSucceeds))
		require.NoError(t, err)
		_, err = p.Retrieve(t.Context(), ch.ID)
		requireUnavailable(t, err)
		got, err := p.Retrieve(t.Context(), ch.ID)
		require.NoError(t, err)
		require.Equal(t, ch, got)
	})
}

func TestFailRate(t *testing.T) {
	t.Parallel()
	t.Run("always", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, provider.TestConfig{FailRate: 1}, nil)
		for i := range 20 {
			_, err := p.Charge(t.Context(), request(fmt.Sprint("pi_", i), provider.TestCardSucceeds))
			require.Equal(t, strata.CodeUnavailable, strata.ErrorCode(err))
			_, err = p.Retrieve(t.Context(), "ch_x")
			require.Equal(t, strata.CodeUnavailable, strata.ErrorCode(err))
		}
	})
	t.Run("never", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, provider.TestConfig{}, nil)
		for i := range 200 {
			_, err := p.Charge(t.Context(), request(fmt.Sprint("pi_", i), provider.TestCardSucceeds))
			require.NoError(t, err)
		}
	})
	t.Run("a fraction", func(t *testing.T) {
		t.Parallel()
		const n, rate = 4000, 0.3
		p := newProvider(t, provider.TestConfig{FailRate: rate}, nil)
		failed, lostReplies := 0, 0
		for i := range n {
			req := request(fmt.Sprint("pi_", i), provider.TestCardSucceeds)
			_, err := p.Charge(t.Context(), req)
			if err == nil {
				continue
			}
			require.Equal(t, strata.CodeUnavailable, strata.ErrorCode(err))
			failed++
			if strings.Contains(err.Error(), provider.OpChargeReply) {
				lostReplies++
			}
		}
		// Six standard deviations: this fails about once in a billion runs.
		sd := math.Sqrt(n * rate * (1 - rate))
		require.InDelta(t, n*rate, failed, 6*sd)
		half := math.Sqrt(float64(failed) * 0.25)
		require.InDelta(t, float64(failed)/2, lostReplies, 6*half, "half the failures lose the reply")
	})
}

func TestTestConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]provider.TestConfig{
		"negative latency":       {Latency: -1},
		"negative jitter":        {Jitter: -1},
		"negative confirm after": {ConfirmAfter: -1},
		"fail rate above 1":      {FailRate: 1.5},
		"negative fail rate":     {FailRate: -0.1},
		"NaN fail rate":          {FailRate: math.NaN()},
		"negative max keys":      {MaxKeys: -1},
		"negative key ttl":       {KeyTTL: -1},
	} {
		require.Error(t, cfg.Validate(), name)
		_, err := provider.NewTestProvider(cfg, nil)
		require.Error(t, err, name)
	}
	var zero provider.TestConfig
	require.NoError(t, zero.Validate())

	var cfg provider.TestConfig
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.Equal(t, provider.TestConfig{ConfirmAfter: provider.DefaultConfirmAfter}, cfg)
	require.NoError(t, fs.Parse([]string{
		"--payments-test-latency=250ms", "--payments-test-jitter=50ms",
		"--payments-test-confirm-after=10s", "--payments-test-fail-rate=0.05",
	}))
	require.Equal(t, provider.TestConfig{
		Latency: 250 * time.Millisecond, Jitter: 50 * time.Millisecond,
		ConfirmAfter: 10 * time.Second, FailRate: 0.05,
	}, cfg)
	require.NoError(t, cfg.Validate())
}

func TestLookupByKey(t *testing.T) {
	clock := stratatest.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	p, err := provider.NewTestProvider(provider.TestConfig{}, clock)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = p.Lookup(ctx, "pi_0/1")
	require.Equal(t, "no_such_charge", strata.ErrorReason(err), "nothing charged under the key")
	// The lookup closed the key: a charge arriving late is refused, so the
	// caller's conclusion (never charged) stays true.
	_, err = p.Charge(ctx, provider.ChargeRequest{IdempotencyKey: "pi_0/1", Amount: strata.Money{Amount: 500, Currency: "USD"},
		Card: provider.Card{Number: provider.TestCardSucceeds, ExpMonth: 12, ExpYear: 2030, CVC: "123"}})
	require.Equal(t, "idempotency_key_closed", strata.ErrorReason(err))
	req := provider.ChargeRequest{IdempotencyKey: "pi_1/1", Amount: strata.Money{Amount: 500, Currency: "USD"},
		Card: provider.Card{Number: provider.TestCardAsync, ExpMonth: 12, ExpYear: 2030, CVC: "123"}}
	c, err := p.Charge(ctx, req)
	require.NoError(t, err)
	got, err := p.Lookup(ctx, "pi_1/1")
	require.NoError(t, err)
	require.Equal(t, c.ID, got.ID)
	require.Equal(t, provider.ChargePending, got.Status)
	clock.Advance(provider.DefaultConfirmAfter)
	got, err = p.Lookup(ctx, "pi_1/1")
	require.NoError(t, err)
	require.Equal(t, provider.ChargeSucceeded, got.Status, "in its current state")
}
