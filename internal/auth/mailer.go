package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/internal/mail"
	"github.com/stratadev/strata/internal/queue"
)

// Stream names the JetStream stream carrying auth's events.
const Stream = "AUTH"

// StreamConfig is the stream auth's events are published to. Messages are
// kept a day: long enough for a worker outage, short enough that mailed
// one-time tokens do not linger.
func StreamConfig() queue.StreamConfig {
	return queue.StreamConfig{Name: Stream, Subjects: []string{"auth.>"}, MaxAge: 24 * time.Hour}
}

// MailConsumer renders auth.mail.* events and sends them. It is idempotent
// in effect: a redelivered event sends the same link again, which the
// one-time token makes harmless.
type MailConsumer struct {
	Mailer mail.Mailer
	// Sealer opens the sealed links; it holds the same master key as the
	// instances that wrote the events.
	Sealer *token.Sealer
}

// ConsumerConfig is the durable consumer the worker runs for mail.
func (MailConsumer) ConsumerConfig() queue.ConsumerConfig {
	return queue.ConsumerConfig{Stream: Stream, Durable: "auth-mailer", FilterSubjects: []string{"auth.mail.>"}}
}

// Handle sends the mail of one event. A payload that cannot be decoded is
// a permanent failure and goes to the dead-letter stream.
func (c MailConsumer) Handle(ctx context.Context, m queue.Message) error {
	var ev MailEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return queue.Permanent(fmt.Errorf("decode mail event %s: %w", m.ID, err))
	}
	link, err := c.Sealer.Open(ev.SealedLink, ev.linkAD())
	if err != nil {
		return queue.Permanent(fmt.Errorf("open link of mail event %s (is the master key the same everywhere?): %w", m.ID, err))
	}
	msg := mail.Message{To: ev.To}
	switch ev.Kind {
	case PurposeVerifyEmail:
		msg.Subject = "Confirm your email address"
		msg.Body = fmt.Sprintf("Hello %s,\n\nconfirm your email address by opening this link:\n\n%s\n\nThe link works once and expires at %s.\n",
			ev.Name, link, ev.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))
	case PurposePasswordReset:
		msg.Subject = "Reset your password"
		msg.Body = fmt.Sprintf("Hello %s,\n\nsomeone asked to reset the password of your account. If it was you, open this link:\n\n%s\n\nThe link works once and expires at %s. If it was not you, ignore this mail.\n",
			ev.Name, link, ev.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))
	default:
		return queue.Permanent(fmt.Errorf("mail event %s: unknown kind %q", m.ID, ev.Kind))
	}
	return c.Mailer.Send(ctx, msg)
}
