package discovery_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// dnsServer is the smallest DNS server the Go resolver accepts: on UDP at
// 127.0.0.1, it answers every A and AAAA question with the addresses it is
// told, authoritatively and with TTL 0, or with SERVFAIL when told to fail.
// It encodes by hand (RFC 1035 section 4) because golang.org/x/net is only
// an indirect dependency of the module.
type dnsServer struct {
	conn     *net.UDPConn
	aQueries atomic.Int64 // A questions answered, one per lookup

	mu    sync.Mutex
	addrs []netip.Addr
	fail  bool
}

func startDNSServer(t *testing.T, addrs ...netip.Addr) *dnsServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	s := &dnsServer{conn: conn, addrs: addrs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// set makes the server answer with addrs from now on.
func (s *dnsServer) set(addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs, s.fail = addrs, false
}

// setFail makes the server answer SERVFAIL from now on.
func (s *dnsServer) setFail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = true
}

// resolver returns a pure-Go resolver that sends every query here.
func (s *dnsServer) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		resp, err := s.answer(buf[:n])
		if err != nil {
			continue
		}
		_, _ = s.conn.WriteToUDPAddrPort(resp, from)
	}
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsClassIN  = 1
	rcodeFail   = 2 // SERVFAIL
)

// answer builds the response to one query message.
func (s *dnsServer) answer(q []byte) ([]byte, error) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, errors.New("want one question")
	}
	// The question's name is a sequence of labels ending with an empty
	// one; a query carries no compression pointers.
	i := 12
	for i < len(q) && q[i] != 0 {
		if q[i]&0xC0 != 0 {
			return nil, errors.New("compressed name in a query")
		}
		i += 1 + int(q[i])
	}
	i++ // the empty label
	if i+4 > len(q) {
		return nil, errors.New("short question")
	}
	question := q[12 : i+4]
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	if qtype == dnsTypeA {
		s.aQueries.Add(1)
	}

	s.mu.Lock()
	addrs, fail := s.addrs, s.fail
	s.mu.Unlock()

	var answers [][]byte
	rcode := byte(0)
	if fail {
		rcode = rcodeFail
	} else {
		for _, a := range addrs {
			if (qtype == dnsTypeA && a.Is4()) || (qtype == dnsTypeAAAA && a.Is6()) {
				answers = append(answers, a.AsSlice())
			}
		}
	}

	resp := make([]byte, 12, 512)
	copy(resp[0:2], q[0:2])               // id
	resp[2] = 0x80 | 0x04 | (q[2] & 0x79) // QR, AA, the query's opcode and RD
	resp[3] = 0x80 | rcode                // RA
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, rdata := range answers {
		resp = append(resp, 0xC0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp, nil
}
