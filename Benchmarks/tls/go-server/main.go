// The Go HTTPS peer server: net/http over crypto/tls, one route.
//
//	go-server --port PORT --cert leaf.pem --key leaf.key
//
// GET / answers "Hello, World!" (text/plain, with a Content-Length); any other path is a
// 404, any other method a 405. TLS 1.2 at least (Go 1.19's server would take 1.0), 1.3
// preferred (crypto/tls's default when both sides have it), its default cipher suites and
// curves. ALPN offers http/1.1 only: TLSNextProto is an empty map, so net/http neither
// advertises nor serves h2. Keep-alive is net/http's default (on). run.sh starts it with
// GOMAXPROCS=1 and pins it to one CPU. It prints `listening on ADDR` once the socket is
// bound, so a caller may wait for that line or for the port.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	port := flag.Int("port", 8443, "TCP port on 127.0.0.1")
	certFile := flag.String("cert", "", "PEM certificate chain (leaf first)")
	keyFile := flag.String("key", "", "PEM private key of the leaf")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: go-server --port PORT --cert FILE --key FILE")
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-server:", err)
		os.Exit(1)
	}

	hello := []byte("Hello, World!")
	length := fmt.Sprint(len(hello))
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", length)
		w.Write(hello)
	})

	config := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	server := &http.Server{
		Handler: mux,
		// A non-nil empty map turns net/http's HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-server:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	if err := server.Serve(tls.NewListener(l, config)); err != nil {
		fmt.Fprintln(os.Stderr, "go-server:", err)
		os.Exit(1)
	}
}
