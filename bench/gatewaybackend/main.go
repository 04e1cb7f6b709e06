// Command gatewaybackend is the upstream of bench/gateway.sh: a bare
// net/http server that answers every GET (and HEAD) with the same 1 KiB
// JSON document, Content-Length set, and /readyz with 200, so that the
// proxies in front of it are what the benchmark measures. It prints
// "listening on http://ADDR" once it listens, and serves until it is
// killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// bodySize is the size of every answer's body.
const bodySize = 1024

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "the loopback address to listen on")
	flag.Parse()
	body := document(bodySize)
	length := []string{strconv.Itoa(len(body))}
	ctype := []string{"application/json"}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			if r.URL.Path == "/readyz" {
				w.WriteHeader(http.StatusOK)
				return
			}
			h := w.Header()
			h["Content-Type"] = ctype // shared, never modified
			h["Content-Length"] = length
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Fatal(srv.Serve(ln))
}

// document returns a JSON object of exactly n bytes (n ≥ 32): an item with
// a padding field that fills it up.
func document(n int) []byte {
	head := `{"id":"itm_1","title":"bench","pad":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}
