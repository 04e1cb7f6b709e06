package queue

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// Message is one delivery of a stored message.
type Message struct {
	Subject string
	// ID is the publisher's message id (Nats-Msg-Id; for events from the
	// outbox, the outbox row id). Idempotent consumers key on it. A message
	// published without one gets "<stream>:<stream sequence>".
	ID     string
	Data   []byte
	Header nats.Header
	// NumDelivered counts deliveries, this one included: 1 the first time.
	NumDelivered uint64
}

// Handler processes one message. It returns nil when the message is done
// (it is then acknowledged), an error to have it retried after a back-off,
// or Permanent(err) to send it to the dead-letter stream at once. Handlers
// must be idempotent: a message can arrive more than once.
type Handler func(ctx context.Context, m Message) error

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (a malformed
// payload, say). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// backoff returns the delay before redelivering a message whose delivery n
// (1-based) failed: uniform in [0, min(maxD, base·2^(n-1))] ("full jitter").
func backoff(n uint64, base, maxD time.Duration, randN func(int64) int64) time.Duration {
	ceiling := backoffCeiling(n, base, maxD)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(randN(int64(ceiling) + 1))
}

// backoffCeiling returns min(maxD, base·2^(n-1)) for n >= 1, without
// overflowing on large n.
func backoffCeiling(n uint64, base, maxD time.Duration) time.Duration {
	ceiling := base
	for i := uint64(1); i < n && ceiling < maxD; i++ {
		ceiling *= 2
	}
	return min(ceiling, maxD)
}
