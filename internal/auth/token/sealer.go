package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer encrypts private keys at rest with AES-256-GCM under a master key
// that lives outside the database. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("new sealer: master key has %d bytes, want 32", len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts and authenticates plain, and authenticates additionalData
// without storing it. The result is a random 12-byte nonce followed by the
// ciphertext and the 16-byte tag. Pass the kid as additionalData, so that a
// sealed key copied into another row fails to open.
func (s *Sealer) Seal(plain, additionalData []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, additionalData), nil
}

var errOpen = errors.New("open sealed key: corrupt, tampered with, or sealed under another key or kid")

// Open reverses Seal. It fails when sealed was altered, was sealed under
// another master key, or additionalData differs from the one sealed with.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errOpen
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], additionalData)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}
