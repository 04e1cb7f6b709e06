package mail_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/mail"
	"github.com/stretchr/testify/require"
)

// smtpSink is a minimal SMTP server on loopback that records one
// transaction: the envelope and the data.
type smtpSink struct {
	addr string
	got  chan map[string]string
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	s := &smtpSink{addr: l.Addr().String(), got: make(chan map[string]string, 1)}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		say := func(line string) { w.WriteString(line + "\r\n"); w.Flush() }
		rec := map[string]string{}
		say("220 sink ready")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.TrimRight(line, "\r\n")
			switch up := strings.ToUpper(cmd); {
			case strings.HasPrefix(up, "EHLO"), strings.HasPrefix(up, "HELO"):
				say("250 sink")
			case strings.HasPrefix(up, "MAIL FROM:"):
				rec["from"] = cmd[len("MAIL FROM:"):]
				say("250 ok")
			case strings.HasPrefix(up, "RCPT TO:"):
				rec["to"] = cmd[len("RCPT TO:"):]
				say("250 ok")
			case up == "DATA":
				say("354 go ahead")
				var data strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					data.WriteString(l)
				}
				rec["data"] = data.String()
				say("250 queued")
			case up == "QUIT":
				say("221 bye")
				s.got <- rec
				return
			default:
				say("502 not implemented")
			}
		}
	}()
	return s
}

func TestSMTPMailerSends(t *testing.T) {
	t.Parallel()
	sink := newSMTPSink(t)
	m, err := mail.NewSMTP("smtp://"+sink.addr, "Strata <no-reply@example.com>")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Send(ctx, mail.Message{To: "ada@example.com", Subject: "Hello", Body: "line one\nline two\n"}))
	rec := <-sink.got
	require.Equal(t, "<no-reply@example.com>", rec["from"], "the envelope sender is the bare address")
	require.Equal(t, "<ada@example.com>", rec["to"])
	require.Contains(t, rec["data"], "From: \"Strata\" <no-reply@example.com>\r\n")
	require.Contains(t, rec["data"], "Subject: Hello\r\n")
	require.Contains(t, rec["data"], "line one\r\nline two\r\n")
}

func TestSMTPSettingsAreChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, from, want string }{
		{"http://host", "a@example.com", "smtp-url"},
		{"smtp://", "a@example.com", "smtp-url"},
		{"smtp://host:25", "not an address", "mail-from"},
	} {
		_, err := mail.NewSMTP(tc.url, tc.from)
		require.ErrorContains(t, err, tc.want)
	}
	m, err := mail.NewSMTP("smtp://127.0.0.1:1", "a@example.com")
	require.NoError(t, err)
	err = m.Send(context.Background(), mail.Message{To: "x@example.com\r\nBcc: y@example.com", Subject: "s"})
	require.ErrorContains(t, err, "header injection")
}

func TestLogMailer(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	l := mail.LogMailer{Logger: slog.New(slog.NewTextHandler(&out, nil))}
	require.NoError(t, l.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "Hi", Body: "b"}))
	require.Contains(t, out.String(), "to=a@example.com")
}
