package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Params are the argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism. It changes the hash, so it is a
	// parameter of the stored hash and not a tuning knob of the machine.
	Threads uint8
	// SaltLen and KeyLen are the lengths in bytes of the random salt and of
	// the derived hash.
	SaltLen, KeyLen uint32
}

// DefaultParams returns the parameters new hashes use: OWASP's minimum
// configuration for argon2id (m=19 MiB, t=2, p=1) with a 16-byte salt and a
// 32-byte hash. One hash takes 34–55 ms on the 2-core reference machine,
// depending on how busy it is, so a core serves about 18–29 password checks
// a second. doc.go says why this point of OWASP's table was chosen.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// owaspMinMemory is OWASP's Password Storage Cheat Sheet table of
// equal-strength argon2id settings: the least memory (KiB) allowed for a
// given number of passes. Five passes or more need 7 MiB.
var owaspMinMemory = [...]uint32{1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}

// Limits that keep a stored hash from asking for absurd work. They bound what
// Verify accepts from an encoded string as well as what Validate accepts.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	minSaltLen = 16
	minKeyLen  = 16
	maxSaltLen = 64
	maxKeyLen  = 128
)

// Validate refuses parameters weaker than OWASP's minimum, and parameters so
// large that a single hash would exhaust the machine. Each error names the
// configuration setting at fault (argon2-memory, argon2-time,
// argon2-threads, argon2-salt-length, argon2-key-length).
func (p Params) Validate() error {
	var errs []error
	switch {
	case p.Time < 1:
		errs = append(errs, errors.New("argon2-time must be at least 1"))
	case p.Time > maxTime:
		errs = append(errs, fmt.Errorf("argon2-time must be at most %d", maxTime))
	}
	if p.Time >= 1 {
		floor := owaspMinMemory[len(owaspMinMemory)-1]
		if int(p.Time) < len(owaspMinMemory) {
			floor = owaspMinMemory[p.Time]
		}
		if p.Memory < floor {
			errs = append(errs, fmt.Errorf("argon2-memory must be at least %d KiB when argon2-time is %d (OWASP minimum), got %d", floor, p.Time, p.Memory))
		}
	}
	if p.Memory > maxMemory {
		errs = append(errs, fmt.Errorf("argon2-memory must be at most %d KiB, got %d", maxMemory, p.Memory))
	}
	if p.Threads < 1 {
		errs = append(errs, errors.New("argon2-threads must be at least 1"))
	}
	if p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen {
		errs = append(errs, fmt.Errorf("argon2-salt-length must be between %d and %d bytes, got %d", minSaltLen, maxSaltLen, p.SaltLen))
	}
	if p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		errs = append(errs, fmt.Errorf("argon2-key-length must be between %d and %d bytes, got %d", minKeyLen, maxKeyLen, p.KeyLen))
	}
	return errors.Join(errs...)
}

// runnable reports whether argon2 can compute a hash with p without
// panicking and without unbounded work. It is weaker than Validate, so that
// tests can use cheap parameters and old, weaker hashes still verify.
func (p Params) runnable() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d out of range", p.Time)
	case p.Memory < 1 || p.Memory > maxMemory:
		return fmt.Errorf("memory %d out of range", p.Memory)
	case p.Threads < 1:
		return errors.New("threads must be at least 1")
	case p.SaltLen < 8 || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d out of range", p.SaltLen)
	case p.KeyLen < 4 || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d out of range", p.KeyLen)
	}
	return nil
}

const phcPrefix = "$argon2id$v=19$"

// encode writes the PHC string
// $argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt>$<hash>, salt and hash in
// unpadded standard base64.
func encode(p Params, salt, key []byte) string {
	b := make([]byte, 0, len(phcPrefix)+32+base64.RawStdEncoding.EncodedLen(len(salt))+base64.RawStdEncoding.EncodedLen(len(key)))
	b = append(b, phcPrefix...)
	b = append(b, "m="...)
	b = strconv.AppendUint(b, uint64(p.Memory), 10)
	b = append(b, ",t="...)
	b = strconv.AppendUint(b, uint64(p.Time), 10)
	b = append(b, ",p="...)
	b = strconv.AppendUint(b, uint64(p.Threads), 10)
	b = append(b, '$')
	b = base64.RawStdEncoding.AppendEncode(b, salt)
	b = append(b, '$')
	b = base64.RawStdEncoding.AppendEncode(b, key)
	return string(b)
}

var errMalformed = errors.New("malformed argon2id hash")

// decode parses a PHC string written by encode. It accepts only argon2id
// version 19, and only parameters that runnable accepts, so that a corrupt
// or hostile stored hash cannot make Verify panic or allocate gigabytes.
func decode(s string) (p Params, salt, key []byte, err error) {
	rest, ok := strings.CutPrefix(s, phcPrefix)
	if !ok {
		return Params{}, nil, nil, fmt.Errorf("%w: not $argon2id$v=19$", errMalformed)
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: want params, salt and hash", errMalformed)
	}
	kv := strings.Split(parts[0], ",")
	if len(kv) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: want m, t and p", errMalformed)
	}
	m, err1 := parseParam(kv[0], "m=", 32)
	t, err2 := parseParam(kv[1], "t=", 32)
	th, err3 := parseParam(kv[2], "p=", 8)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[1]); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: salt: %w", errMalformed, err)
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(parts[2]); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: hash: %w", errMalformed, err)
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.runnable(); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return p, salt, key, nil
}

// parseParam parses "<name><decimal>" strictly: no sign, no leading zeros,
// so that every accepted string has exactly one spelling.
func parseParam(s, name string, bits int) (uint64, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || (len(v) > 1 && v[0] == '0') || v[0] < '0' || v[0] > '9' {
		return 0, fmt.Errorf("bad %q", s)
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("bad %q", s)
	}
	return n, nil
}
