// The Go HTTP peer server: net/http's default server, one handler per route.
//
//	go-server -addr 127.0.0.1:PORT
//
// GET / answers "Hello, World!" (text/plain), GET /4k answers 4096 bytes of 'a'; any
// other path is a 404. Keep-alive is net/http's default (on). run.sh starts it with
// GOMAXPROCS=1 and pins it to one CPU. It prints `listening on ADDR` once the socket
// is bound, so a caller may wait for that line or for the port.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	hello := []byte("Hello, World!")
	fourK := bytes.Repeat([]byte{'a'}, 4096)
	route := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			h := w.Header()
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/4k", route(fourK))
	rootHandler := route(hello)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		rootHandler(w, r)
	})

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-server:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, "go-server:", err)
		os.Exit(1)
	}
}
