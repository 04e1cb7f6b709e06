package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"slices"
	"time"
)

// A TestProvider charge id is "ch_" and 32 characters of lowercase
// Crockford base32 (the alphabet of strata.ID) encoding 20 bytes:
//
//	 0-5   milliseconds since the Unix epoch when the charge was made
//	 6     version (high 4 bits, 1) and outcome (low 4 bits)
//	 7     brand
//	 8-9   last 4 digits of the card, as a number
//	10-13  nonce: the first bytes of an HMAC of the idempotency key, so
//	       that charges made in the same millisecond differ
//	14-19  tag: the first 6 bytes of HMAC-SHA256(chargeIDKey, bytes 0-13)
//
// The id is all a TestProvider needs to answer Retrieve, in any process.
// The tag makes every id that was not made here (a typo, a truncation, an
// id of another kind) fail to parse. Its key is not secret: it protects
// against accidents, not forgery, which is enough for a test network.
const (
	chargeIDPrefix  = "ch_"
	chargeIDBytes   = 20
	chargeIDVersion = 1
)

var (
	chargeIDEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	chargeIDLen      = len(chargeIDPrefix) + chargeIDEncoding.EncodedLen(chargeIDBytes)
	chargeIDKey      = []byte("strata/internal/payments/provider test charge id v1")
)

// outcome is what the test network decided for a charge.
type outcome byte

const (
	outcomeSucceeded outcome = iota
	outcomeAsync             // pending until ConfirmAfter has passed, then succeeded
	outcomeDeclined
	outcomeInsufficientFunds
	outcomeProcessingError
	outcomeExpiredCard
	outcomeIncorrectCVC
	numOutcomes
)

// failureCodes maps each failing outcome to its Charge.FailureCode.
var failureCodes = [numOutcomes]string{
	outcomeDeclined:          FailureCardDeclined,
	outcomeInsufficientFunds: FailureInsufficientFunds,
	outcomeProcessingError:   FailureProcessingError,
	outcomeExpiredCard:       FailureExpiredCard,
	outcomeIncorrectCVC:      FailureIncorrectCVC,
}

// brands lists the brands in the order of their code in a charge id.
var brands = []string{BrandUnknown, BrandVisa, BrandMastercard, BrandAmex, BrandDiscover}

// chargeRecord is what a charge id carries.
type chargeRecord struct {
	created time.Time // to the millisecond
	outcome outcome
	brand   string
	last4   string
}

func (r chargeRecord) encode(idempotencyKey string) string {
	var b [chargeIDBytes]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(max(r.created.UnixMilli(), 0)))
	copy(b[0:6], ms[2:])
	b[6] = chargeIDVersion<<4 | byte(r.outcome)
	b[7] = byte(max(slices.Index(brands, r.brand), 0))
	last4 := 0
	for i := 0; i < len(r.last4); i++ {
		last4 = last4*10 + int(r.last4[i]-'0')
	}
	binary.BigEndian.PutUint16(b[8:10], uint16(last4))
	copy(b[10:14], mac([]byte("nonce\x00"+idempotencyKey)))
	copy(b[14:20], mac(b[:14]))
	return chargeIDPrefix + chargeIDEncoding.EncodeToString(b[:])
}

// parseChargeID decodes an id made by encode; ok is false for anything
// else.
func parseChargeID(id string) (r chargeRecord, ok bool) {
	if len(id) != chargeIDLen || id[:len(chargeIDPrefix)] != chargeIDPrefix {
		return r, false
	}
	body := id[len(chargeIDPrefix):]
	b, err := chargeIDEncoding.DecodeString(body)
	// The decoder skips newlines and accepts non-zero trailing bits; only
	// the canonical spelling of the bytes is an id.
	if err != nil || len(b) != chargeIDBytes || chargeIDEncoding.EncodeToString(b) != body {
		return r, false
	}
	if !hmac.Equal(b[14:20], mac(b[:14])[:6]) {
		return r, false
	}
	if b[6]>>4 != chargeIDVersion || outcome(b[6]&0x0f) >= numOutcomes || int(b[7]) >= len(brands) {
		return r, false
	}
	last4 := binary.BigEndian.Uint16(b[8:10])
	if last4 > 9999 {
		return r, false
	}
	var ms [8]byte
	copy(ms[2:], b[0:6])
	return chargeRecord{
		created: time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:]))).UTC(),
		outcome: outcome(b[6] & 0x0f),
		brand:   brands[b[7]],
		last4:   string([]byte{'0' + byte(last4/1000), '0' + byte(last4/100%10), '0' + byte(last4/10%10), '0' + byte(last4%10)}),
	}, true
}

func mac(b []byte) []byte {
	h := hmac.New(sha256.New, chargeIDKey)
	h.Write(b)
	return h.Sum(nil)
}
