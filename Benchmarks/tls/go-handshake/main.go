// The TLS handshake load generator: full TLS 1.3 handshakes per second against an HTTPS
// server, each on a new connection carrying one request.
//
//	go-handshake -addr 127.0.0.1:PORT -c 64 -d 10 -ca ca.pem
//
// C goroutines each loop for D seconds: dial TCP, run a TLS 1.3 handshake (TLS 1.3 only,
// no session cache, so never a resumption: every handshake is a full one with a fresh
// key exchange and the server's certificate signature), verify the server's chain against
// the CA file with ServerName "localhost", offer ALPN http/1.1, write
// `GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, read to EOF, check the
// answer is a 200 whose bytes hold "Hello, World!", close. A connection counts once it
// has been read to EOF before the D seconds are up; connections still under way at the
// end are dropped (neither counted nor errors). Each connection has 10 s to finish, or it
// is an error; after an error the goroutine waits 10 ms before its next dial, so a dead
// server is not spun on.
//
// It prints one line:
//
//	RESULT handshakes=N hps=R errors=E p50_ms=A p99_ms=B
//
// handshakes is the connections completed in the window, hps is that over D, errors
// counts failed connections (dial, handshake, verification, I/O or a wrong answer),
// p50/p99 are nearest-rank percentiles of a completed connection's time from the dial's
// start to EOF. On stderr: the first few distinct error messages, and what the first
// completed connection negotiated (version, cipher suite, ALPN, resumed or not). Exit
// status is 0 even with errors (the line says how many), 2 on bad flags, 1 if the CA
// file is unusable.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

const request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

var (
	hello  = []byte("Hello, World!")
	status = []byte("HTTP/1.1 200 ")
)

type worker struct {
	latencies []float64 // ms, of completed connections
	errors    int
	firstErrs []string
	state     *tls.ConnectionState // of its first completed connection
}

func main() {
	addr := flag.String("addr", "", "server host:port")
	conns := flag.Int("c", 64, "concurrent connections (goroutines)")
	secs := flag.Float64("d", 10, "seconds to run")
	caFile := flag.String("ca", "", "PEM file of the CA that signed the server's certificate")
	flag.Parse()
	if *addr == "" || *caFile == "" || *conns < 1 || *secs <= 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: go-handshake -addr HOST:PORT -ca CA.pem [-c N] [-d SECONDS]")
		os.Exit(2)
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-handshake:", err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fmt.Fprintln(os.Stderr, "go-handshake: no certificate in", *caFile)
		os.Exit(1)
	}
	config := &tls.Config{
		RootCAs:            pool,
		ServerName:         "localhost",
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: nil, // no tickets kept: no resumption, every handshake is full
	}

	start := time.Now()
	end := start.Add(time.Duration(*secs * float64(time.Second)))
	workers := make([]worker, *conns)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			for time.Now().Before(end) {
				t0 := time.Now()
				var err error
				var state tls.ConnectionState
				buf, state, err = once(*addr, config, t0, end, buf[:0])
				t1 := time.Now()
				if t1.After(end) {
					return // under way at the end: dropped
				}
				if err != nil {
					w.errors++
					if len(w.firstErrs) < 3 {
						w.firstErrs = append(w.firstErrs, err.Error())
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				w.latencies = append(w.latencies, float64(t1.Sub(t0))/float64(time.Millisecond))
				if w.state == nil {
					w.state = &state
				}
			}
		}(&workers[i])
	}
	wg.Wait()

	var all []float64
	errs := 0
	seen := map[string]bool{}
	for i := range workers {
		all = append(all, workers[i].latencies...)
		errs += workers[i].errors
		for _, e := range workers[i].firstErrs {
			if !seen[e] && len(seen) < 5 {
				seen[e] = true
				fmt.Fprintln(os.Stderr, "go-handshake: error:", e)
			}
		}
	}
	for i := range workers {
		if st := workers[i].state; st != nil {
			fmt.Fprintf(os.Stderr, "go-handshake: negotiated %s %s alpn=%q resumed=%v\n",
				versionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol, st.DidResume)
			break
		}
	}
	sort.Float64s(all)
	n := len(all)
	fmt.Printf("RESULT handshakes=%d hps=%.1f errors=%d p50_ms=%s p99_ms=%s\n",
		n, float64(n)/(*secs), errs, percentile(all, 50), percentile(all, 99))
}

// once makes one connection: dial, full handshake, one request, the answer to EOF.
func once(addr string, config *tls.Config, t0, end time.Time, buf []byte) ([]byte, tls.ConnectionState, error) {
	var state tls.ConnectionState
	deadline := t0.Add(10 * time.Second)
	if end.Before(deadline) {
		deadline = end // nothing after the end counts; do not wait for it
	}
	raw, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return buf, state, err
	}
	defer raw.Close()
	raw.SetDeadline(deadline)
	conn := tls.Client(raw, config)
	if err := conn.Handshake(); err != nil {
		return buf, state, err
	}
	state = conn.ConnectionState()
	if _, err := io.WriteString(conn, request); err != nil {
		return buf, state, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		k, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, state, err
		}
	}
	if !bytes.HasPrefix(buf, status) || !bytes.Contains(buf, hello) {
		head := buf
		if len(head) > 40 {
			head = head[:40]
		}
		return buf, state, fmt.Errorf("unexpected answer %q", head)
	}
	return buf, state, nil
}

// percentile is the nearest-rank percentile of sorted values, "NA" when there are none.
func percentile(sorted []float64, p float64) string {
	if len(sorted) == 0 {
		return "NA"
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return fmt.Sprintf("%.3f", sorted[rank-1])
}

// versionName is tls.VersionName, which Go 1.19 (Debian 12's) lacks.
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLS1.3"
	case tls.VersionTLS12:
		return "TLS1.2"
	}
	return fmt.Sprintf("0x%04x", v)
}
