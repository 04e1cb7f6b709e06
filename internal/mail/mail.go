// Package mail sends email: to the log by default (development and tests),
// or through an SMTP server when one is configured.
package mail

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Message is one plain-text email.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends messages. Send returns only after the message was handed
// over; an error means it may be retried.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer writes each message to a logger instead of sending it.
type LogMailer struct {
	Logger *slog.Logger
}

// Send logs m at info level.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	l.Logger.InfoContext(ctx, "mail (log mailer)", "to", m.To, "subject", m.Subject, "body", m.Body)
	return nil
}

// SMTPMailer sends through an SMTP server with STARTTLS when offered and
// PLAIN auth when credentials are set.
type SMTPMailer struct {
	addr string
	auth smtp.Auth
	from *netmail.Address
}

// NewSMTP parses an smtp://user:pass@host:port URL.
func NewSMTP(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "smtp" || u.Host == "" {
		return nil, fmt.Errorf("smtp-url: must look like smtp://user:password@host:587")
	}
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail-from: must be an address like \"Strata <no-reply@example.com>\": %w", err)
	}
	m := &SMTPMailer{addr: u.Host, from: addr}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		m.addr = net.JoinHostPort(u.Host, "587")
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pw, u.Hostname())
	}
	return m, nil
}

// Send delivers m. net/smtp has no context support, so the deadline is
// enforced by running the exchange in a goroutine.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	if strings.ContainsAny(m.To, "\r\n") || strings.ContainsAny(m.Subject, "\r\n") {
		return fmt.Errorf("send mail: header injection refused")
	}
	body := "From: " + s.from.String() + "\r\nTo: " + m.To + "\r\nSubject: " + m.Subject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(m.Body, "\n", "\r\n")
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(s.addr, s.auth, s.from.Address, []string{m.To}, []byte(body)) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("send mail to %s via %s: %w", m.To, s.addr, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send mail to %s: %w", m.To, ctx.Err())
	}
}
