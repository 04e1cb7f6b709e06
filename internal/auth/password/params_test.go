package password

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	d := DefaultParams()
	with := func(f func(p *Params)) Params { p := d; f(&p); return p }
	tests := []struct {
		name    string
		params  Params
		wantErr string // a substring naming the setting; "" for valid
	}{
		{"default", d, ""},
		{"OWASP 46 MiB x1", with(func(p *Params) { p.Memory, p.Time = 47104, 1 }), ""},
		{"OWASP 12 MiB x3", with(func(p *Params) { p.Memory, p.Time = 12288, 3 }), ""},
		{"OWASP 9 MiB x4", with(func(p *Params) { p.Memory, p.Time = 9216, 4 }), ""},
		{"OWASP 7 MiB x5", with(func(p *Params) { p.Memory, p.Time = 7168, 5 }), ""},
		{"7 MiB x10", with(func(p *Params) { p.Memory, p.Time = 7168, 10 }), ""},
		{"RFC 9106 64 MiB x3 p4", with(func(p *Params) { p.Memory, p.Time, p.Threads = 65536, 3, 4 }), ""},
		{"too little memory for t=2", with(func(p *Params) { p.Memory = 19455 }), "argon2-memory"},
		{"too little memory for t=1", with(func(p *Params) { p.Memory, p.Time = 19456, 1 }), "argon2-memory"},
		{"too little memory for t=9", with(func(p *Params) { p.Memory, p.Time = 7167, 9 }), "argon2-memory"},
		{"too much memory", with(func(p *Params) { p.Memory = 1<<20 + 1 }), "argon2-memory"},
		{"zero time", with(func(p *Params) { p.Time = 0 }), "argon2-time"},
		{"too many passes", with(func(p *Params) { p.Time = 65 }), "argon2-time"},
		{"zero threads", with(func(p *Params) { p.Threads = 0 }), "argon2-threads"},
		{"short salt", with(func(p *Params) { p.SaltLen = 8 }), "argon2-salt-length"},
		{"short key", with(func(p *Params) { p.KeyLen = 8 }), "argon2-key-length"},
		{"tiny test params", cheap, "argon2-memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.params.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	p := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 4 * 4, KeyLen: 32}
	salt := []byte("0123456789abcdef")
	key := []byte("0123456789abcdef0123456789abcdef")
	enc := encode(p, salt, key)
	require.Equal(t, "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", enc)

	gotP, gotSalt, gotKey, err := decode(enc)
	require.NoError(t, err)
	require.Equal(t, p, gotP)
	require.Equal(t, salt, gotSalt)
	require.Equal(t, key, gotKey)
}

// FuzzDecode feeds arbitrary stored hashes to the decoder: it must never
// panic, must bound the work it accepts, and what it accepts must re-encode
// to the same string (one spelling per hash).
func FuzzDecode(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add(encode(DefaultParams(), make([]byte, 16), make([]byte, 32)))
	f.Add("$argon2id$v=19$m=064,t=1,p=1$c2FsdHNhbHQ$AAAA")
	f.Add("$argon2id$v=19$m=4294967296,t=1,p=256$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decode(s)
		if err != nil {
			require.ErrorIs(t, err, errMalformed)
			return
		}
		require.NoError(t, p.runnable())
		require.Equal(t, s, encode(p, salt, key))
		require.True(t, strings.HasPrefix(s, phcPrefix))
	})
}
