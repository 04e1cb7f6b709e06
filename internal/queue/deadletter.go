package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The dead-letter stream and the headers of its messages.
const (
	// DeadLetterStream holds messages that consumers gave up on, on
	// subjects dlq.<stream>.<original subject>, for DeadLetterMaxAge.
	DeadLetterStream = "DLQ"

	// DeadLetterMaxAge is how long the dead-letter stream keeps a message:
	// long enough to inspect and replay it after a weekend or a holiday,
	// not forever, since dead letters carry whole payloads, which may be
	// personal or otherwise sensitive data.
	DeadLetterMaxAge = 14 * 24 * time.Hour

	HeaderDLQReason       = "Strata-Dlq-Reason"       // the handler's error text
	HeaderDLQStream       = "Strata-Dlq-Stream"       // the stream the message came from
	HeaderDLQConsumer     = "Strata-Dlq-Consumer"     // the durable consumer that gave up
	HeaderOriginalSubject = "Strata-Original-Subject" // the message's subject
	HeaderDeliveries      = "Strata-Deliveries"       // deliveries made, the last included
	// HeaderOriginalMsgID carries the original Nats-Msg-Id (or
	// "<stream>:<sequence>" when there was none). The dead letter's own
	// Nats-Msg-Id is "<stream>/<consumer>/<original id>": two consumers of
	// one stream giving up on the same message must not de-duplicate each
	// other, while one consumer dead-lettering it twice must.
	HeaderOriginalMsgID = "Strata-Original-Msg-Id"
)

// maxReasonLen bounds the reason header; error texts can be long.
const maxReasonLen = 1024

// DeadLetterSubject returns the subject a message from stream on subject is
// dead-lettered to.
func DeadLetterSubject(stream, subject string) string {
	return "dlq." + stream + "." + subject
}

// EnsureDeadLetterStream creates or updates the dead-letter stream.
// Consume calls it.
func (c *Client) EnsureDeadLetterStream(ctx context.Context) error {
	return c.EnsureStream(ctx, StreamConfig{Name: DeadLetterStream, Subjects: []string{"dlq.>"}, MaxAge: DeadLetterMaxAge})
}

// deadLetter copies the message to the dead-letter stream, waits for the
// server to store it, then terminates the original so it is never
// redelivered. When the copy fails the original is left alone, to be
// retried.
func (k *Consumer) deadLetter(msg jetstream.Msg, m Message, stream string, cause error) error {
	h := nats.Header{}
	for key, vals := range msg.Headers() {
		// Nats-* headers steer the server (expected sequences, TTLs, ...)
		// and would refuse or alter the dead-letter publish.
		if strings.HasPrefix(key, "Nats-") {
			continue
		}
		h[key] = append([]string(nil), vals...)
	}
	h.Set(HeaderDLQReason, headerValue(cause.Error(), maxReasonLen))
	h.Set(HeaderDLQStream, stream)
	h.Set(HeaderDLQConsumer, k.cfg.Durable)
	h.Set(HeaderOriginalSubject, m.Subject)
	h.Set(HeaderDeliveries, strconv.FormatUint(m.NumDelivered, 10))
	h.Set(HeaderOriginalMsgID, m.ID)
	dl := &nats.Msg{Subject: DeadLetterSubject(stream, m.Subject), Header: h, Data: m.Data}

	ctx, cancel := context.WithTimeout(k.hctx, ackTimeout)
	defer cancel()
	if err := k.client.publishMsg(ctx, dl, stream+"/"+k.cfg.Durable+"/"+m.ID); err != nil {
		return err
	}
	if err := msg.Term(); err != nil {
		// Redelivered, it fails again and is dead-lettered again, which
		// the dead letter's message id de-duplicates.
		return fmt.Errorf("terminate dead-lettered message: %w", err)
	}
	return nil
}

// headerValue makes s safe as a header value: one line, at most n bytes.
func headerValue(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	return truncate(s, n)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}

func cloneHeader(h nats.Header) nats.Header {
	if h == nil {
		return nil
	}
	out := make(nats.Header, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}
