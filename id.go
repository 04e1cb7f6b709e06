package strata

import (
	"crypto/rand"
	"encoding/binary"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"time"
)

// ID is an opaque identifier with a type prefix, such as
// "usr_06c3y8k2x0001m3b7q4w9r2e5t". After the prefix come 26 characters of
// lowercase Crockford base32 encoding 128 bits:
//
//	48 bits  milliseconds since the Unix epoch (IDs sort by creation time)
//	16 bits  the logical shard the entity lives on
//	64 bits  randomness; IDs made by one process in the same millisecond
//	         count up from the first one's random value, so that they keep
//	         their creation order (an outbox relays events in ID order)
//
// Because the shard is inside the ID, a request is routed to its database
// without a lookup (DESIGN.md §4). An entity that belongs to another (a
// session to its user, an item to its creator) takes its owner's shard.
type ID string

// MaxShards is the largest number of logical shards an ID can address.
const MaxShards = 1 << 16

const (
	idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	idBodyLen  = 26
)

var idDecode = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(idAlphabet); i++ {
		t[idAlphabet[i]] = byte(i)
	}
	return t
}()

// NewID returns a new ID with the given prefix (without the underscore) that
// lives on logical shard shard, stamped with time t.
func NewID(prefix string, shard int, t time.Time) ID {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[0:8], ms<<16|uint64(uint16(shard)))
	binary.BigEndian.PutUint64(b[8:16], monotonic.next(ms))
	return ID(prefix + "_" + encodeID(b))
}

// monotonic hands out the random half of IDs: fresh randomness for a
// millisecond it has not seen lately, the previous value plus one for one
// it has. It remembers the last few milliseconds, so goroutines holding
// slightly different clock readings do not reset each other's sequence.
// It is process state, like crypto/rand's own.
var monotonic idSequence

type idSequence struct {
	mu     sync.Mutex
	slots  [16]struct{ ms, last uint64 }
	victim int
}

func (s *idSequence) next(ms uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.slots {
		if sl := &s.slots[i]; sl.ms == ms && sl.last != math.MaxUint64 {
			sl.last++
			return sl.last
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("strata: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	// The top bit stays clear so the millisecond has 2^63 increments of room.
	sl := &s.slots[s.victim]
	s.victim = (s.victim + 1) % len(s.slots)
	sl.ms, sl.last = ms, binary.BigEndian.Uint64(b[:])>>1
	return sl.last
}

// ParseID checks that s is a well-formed ID with the given prefix.
func ParseID(s, prefix string) (ID, error) {
	if len(s) != len(prefix)+1+idBodyLen || !strings.HasPrefix(s, prefix+"_") {
		return "", &Error{Code: CodeInvalid, Reason: "invalid_id", Message: "not a valid " + prefix + " id"}
	}
	if _, ok := decodeID(s[len(prefix)+1:]); !ok {
		return "", &Error{Code: CodeInvalid, Reason: "invalid_id", Message: "not a valid " + prefix + " id"}
	}
	return ID(s), nil
}

// Prefix returns the type prefix of id, such as "usr".
func (id ID) Prefix() string {
	i := strings.IndexByte(string(id), '_')
	if i < 0 {
		return ""
	}
	return string(id[:i])
}

// Shard returns the logical shard id lives on. A malformed id reports ok false.
func (id ID) Shard() (shard int, ok bool) {
	b, ok := id.bytes()
	if !ok {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(b[6:8])), true
}

// Time returns the creation time encoded in id, to the millisecond.
func (id ID) Time() time.Time {
	b, ok := id.bytes()
	if !ok {
		return time.Time{}
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[0:8]) >> 16))
}

func (id ID) String() string { return string(id) }

func (id ID) bytes() ([16]byte, bool) {
	i := strings.IndexByte(string(id), '_')
	if i < 0 || len(id)-i-1 != idBodyLen {
		return [16]byte{}, false
	}
	return decodeID(string(id[i+1:]))
}

// ShardOfKey maps a key that is not an ID (an email address, a client
// address) to one of n logical shards, stably across versions and machines.
func ShardOfKey(key string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

// RandomShard picks a logical shard for a new root entity such as a user.
func RandomShard(n int) int {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("strata: crypto/rand failed: " + err.Error())
	}
	return int(binary.BigEndian.Uint64(b[:]) % uint64(n))
}

// encodeID writes 128 bits as 26 base32 digits, most significant first, so
// that string order equals numeric order.
func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [idBodyLen]byte
	for i := idBodyLen - 1; i >= 0; i-- {
		out[i] = idAlphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

func decodeID(s string) ([16]byte, bool) {
	if len(s) != idBodyLen {
		return [16]byte{}, false
	}
	var hi, lo uint64
	for i := 0; i < idBodyLen; i++ {
		v := idDecode[s[i]]
		if v == 0xff || (i == 0 && v > 3) { // 26*5 = 130 bits: the top two must be zero
			return [16]byte{}, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], hi)
	binary.BigEndian.PutUint64(b[8:16], lo)
	return b, true
}
