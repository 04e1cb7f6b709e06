package content

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The parsers of the tus headers read untrusted input: fuzz them.

func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{"", "item_id aXRtXzEyMw==,filename YS5wbmc=", "flag,other dmFs", " , ", "a b c", "k ====", "é eA=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		m, err := parseMetadata(raw)
		if err != nil {
			return
		}
		// What was read, written again, reads the same.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var pairs []string
		for _, k := range keys {
			require.NotEmpty(t, k)
			require.False(t, strings.ContainsAny(k, " ,"), "key %q", k)
			pairs = append(pairs, k+" "+base64.StdEncoding.EncodeToString([]byte(m[k])))
		}
		again, err := parseMetadata(strings.Join(pairs, ","))
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}

func FuzzParseChecksum(f *testing.F) {
	for _, s := range []string{"", "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "md5 1B2M2Y8AsgTpgAmY7PhCfg==", "crc32 AAAA", "sha256", "sha256 !"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		sum, err := parseChecksum(raw)
		if err != nil || sum == nil {
			require.True(t, err != nil || raw == "", "only an absent header is no checksum")
			return
		}
		newHash := uploadHashes[sum.Algorithm]
		require.NotNil(t, newHash)
		require.Len(t, sum.Sum, newHash().Size())
	})
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "007", "104857600", "-1", "+1", " 1", "1e3", "9223372036854775807", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseDecimal(s)
		if !ok {
			return
		}
		require.GreaterOrEqual(t, n, int64(0))
		want := strings.TrimLeft(s, "0")
		if want == "" {
			want = "0"
		}
		require.Equal(t, want, strconv.FormatInt(n, 10))
	})
}
