package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/stratadev/strata"
)

// Sender settings.
const (
	// UserAgent identifies webhook requests.
	UserAgent = "Strata-Webhooks/1.0"
	// PollInterval is how often RunSender looks for due deliveries when
	// the dispatcher of its own process has not woken it.
	PollInterval = time.Second
	// RetryBase and RetryCap shape the back-off after failed attempt n:
	// a delay drawn uniformly from [0, min(RetryCap, RetryBase·2^(n-1))]
	// ("full jitter"), at least one second.
	RetryBase = 30 * time.Second
	RetryCap  = time.Hour
	// Retention is how long finished deliveries, their logs and their
	// events are kept.
	Retention = 30 * 24 * time.Hour

	// leaseMargin is added to the timeout to make the lease: time to
	// record the outcome. A sender that dies holding a lease delays its
	// delivery by at most this much plus the timeout.
	leaseMargin  = time.Minute
	sendBatch    = 32
	sendParallel = 8
	// maxResponseRead bounds how much of a response is read (and
	// discarded) so the connection can be reused.
	maxResponseRead = 64 << 10
	maxErrorText    = 500
	sweepBatch      = 500
	sweepInterval   = time.Hour
)

// RunSender sends due deliveries until ctx ends: the worker role runs it,
// on any number of instances (each delivery is claimed under a lease, so
// two senders never send it at once). It also sweeps finished deliveries
// older than Retention, hourly.
func (s *Service) RunSender(ctx context.Context) error {
	poll := time.NewTicker(PollInterval)
	defer poll.Stop()
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	s.sweepLogged(ctx)
	for {
		n, err := s.SendDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("send webhooks", "error", err)
		}
		if n == sendBatch && err == nil && ctx.Err() == nil {
			continue // there may be more
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		case <-s.wake:
		case <-sweep.C:
			s.sweepLogged(ctx)
		}
	}
}

func (s *Service) sweepLogged(ctx context.Context) {
	if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("sweep webhook deliveries", "error", err, "rows", n)
	} else if n > 0 {
		s.log.Debug("swept webhook deliveries", "rows", n)
	}
}

// Sweep deletes the deliveries finished more than Retention ago, their
// logs, and the events no delivery needs any more. It returns the number
// of rows deleted.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	cutoff := s.clock.Now().Add(-Retention)
	total := 0
	for {
		n, err := s.store.sweep(ctx, cutoff, sweepBatch)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// SendDue claims the deliveries due now (at most one batch) and sends
// them, a few at a time; it returns how many it attempted.
func (s *Service) SendDue(ctx context.Context) (int, error) {
	now := s.clock.Now()
	ids, err := s.store.due(ctx, now, sendBatch)
	if err != nil {
		return 0, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sent int
	)
	slots := make(chan struct{}, sendParallel)
	for _, id := range ids {
		// Claim only once a slot is free, so the lease runs while sending.
		slots <- struct{}{}
		now := s.clock.Now()
		token := newLeaseToken()
		ok, err := s.store.claim(ctx, id, token, now, now.Add(s.lease()))
		if err != nil || !ok { // !ok: another sender has it
			<-slots
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			err := s.deliver(ctx, id, token)
			mu.Lock()
			defer mu.Unlock()
			sent++
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return sent, errors.Join(errs...)
}

// lease is how long a claim holds a delivery.
func (s *Service) lease() time.Duration { return s.cfg.Timeout + leaseMargin }

func newLeaseToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// deliver makes one attempt at a delivery claimed under token and records
// it. When ctx ends during the attempt (the worker is stopping) nothing is
// recorded: the lease lapses and another sender tries again.
func (s *Service) deliver(ctx context.Context, id strata.ID, token string) error {
	j, err := s.store.job(ctx, id, token)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	var a Attempt
	if secrets, err := s.signingSecrets(&j.endpoint, now); err != nil {
		s.log.Error("webhook signing secret", "endpoint_id", j.endpoint.ID, "error", err)
		a = Attempt{At: now, Error: "the signing secret could not be read"}
	} else {
		a = s.post(ctx, j.endpoint.URL, j.body, secrets, now)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	o := s.next(j, a, now)
	log := s.log.With("delivery_id", id, "endpoint_id", j.endpoint.ID, "event_id", j.eventID)
	switch o.status {
	case StatusSucceeded:
		log.Debug("webhook delivered", "status_code", a.StatusCode)
	case StatusPending:
		log.Info("webhook attempt failed", "status_code", a.StatusCode, "error", a.Error, "next_attempt_at", o.nextAttemptAt)
	case StatusFailed:
		log.Warn("webhook delivery failed for good", "status_code", a.StatusCode, "error", a.Error)
	}
	if err := s.store.record(ctx, id, token, o); err != nil {
		if errors.Is(err, errLeaseLost) {
			log.Warn("webhook lease lost before the outcome was recorded")
			return nil
		}
		return err
	}
	return nil
}

// post sends body to url signed with secrets at now, and reports the
// attempt.
func (s *Service) post(ctx context.Context, url string, body []byte, secrets [][]byte, now time.Time) Attempt {
	a := Attempt{At: now}
	start := time.Now() // the duration is measured, not scheduled: the real clock
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		a.Error = errorText(err)
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(SignatureHeader, Header(now, body, secrets...))
	resp, err := s.client.Do(req)
	if err != nil {
		a.Duration = time.Since(start)
		a.Error = errorText(err)
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	resp.Body.Close()
	a.Duration = time.Since(start)
	a.StatusCode = resp.StatusCode
	if !a.ok() {
		a.Error = fmt.Sprintf("the endpoint answered %d; only 2xx counts as delivered", resp.StatusCode)
	}
	return a
}

func (a *Attempt) ok() bool { return a.StatusCode >= 200 && a.StatusCode < 300 }

func errorText(err error) string {
	t := err.Error()
	if len(t) > maxErrorText {
		t = t[:maxErrorText] + "..."
	}
	return t
}

// next decides a delivery's state after attempt a at now: succeeded on
// 2xx; else pending again after the back-off, but never past MaxAge from
// the first attempt, where one last attempt is made; failed when an
// attempt at or past that deadline fails.
func (s *Service) next(j *job, a Attempt, now time.Time) outcome {
	first := j.firstAttemptAt
	if first.IsZero() {
		first = now
	}
	o := outcome{firstAttemptAt: first, failures: j.failures, nextAttemptAt: now, attempt: a}
	if a.ok() {
		o.status = StatusSucceeded
		return o
	}
	o.failures++
	deadline := first.Add(s.cfg.MaxAge)
	if !now.Before(deadline) {
		o.status = StatusFailed
		return o
	}
	o.status = StatusPending
	o.nextAttemptAt = now.Add(retryDelay(o.failures, s.randN))
	if o.nextAttemptAt.After(deadline) {
		o.nextAttemptAt = deadline
	}
	return o
}

// retryCeiling is the largest delay after failure n (1-based):
// min(RetryCap, RetryBase·2^(n-1)).
func retryCeiling(n int) time.Duration {
	c := RetryBase
	for i := 1; i < n && c < RetryCap; i++ {
		c *= 2
	}
	return min(c, RetryCap)
}

// retryDelay draws the delay after failure n: full jitter under
// retryCeiling(n), at least a second.
func retryDelay(n int, randN func(int64) int64) time.Duration {
	d := time.Duration(randN(int64(retryCeiling(n)) + 1))
	return max(d, time.Second)
}
