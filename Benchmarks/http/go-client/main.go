// The Go HTTP peer client: COUNT GETs of one URL, all in flight at once, one goroutine
// each, over net/http's default transport with no per-host connection cap.
//
//	GOMAXPROCS=1 go-client -count 1000 -url http://127.0.0.1:PORT/
//
// The transport is a clone of http.DefaultTransport with MaxConnsPerHost 0 (no cap: every
// request dials its own connection when none is idle) and MaxIdleConnsPerHost and
// MaxIdleConns raised to COUNT (so finished connections are kept, not closed, as the
// defaults of 2 and 100 would). run.sh runs it with GOMAXPROCS=1, pinned to one CPU.
//
// It prints one line:
//
//	RESULT wall_ms=W rps=R p50_ms=A p99_ms=B peak_rss_kib=K errors=E
//
// wall_ms is from just before the first request starts to the last body read; rps is
// COUNT / wall; p50/p99 are nearest-rank percentiles of the per-request latency (from the
// request's start to its body read to the end) of the requests that succeeded; errors
// counts requests that failed or answered other than 200; peak_rss_kib is getrusage's
// ru_maxrss (KiB on Linux) of this process. Exit status is 0 even with errors (the line
// says how many), 2 on bad flags.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

func main() {
	count := flag.Int("count", 1000, "number of GETs, all concurrent")
	url := flag.String("url", "", "URL to fetch")
	flag.Parse()
	if *url == "" || *count < 1 {
		fmt.Fprintln(os.Stderr, "usage: go-client -count N -url URL")
		os.Exit(2)
	}
	n := *count

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = 0
	tr.MaxIdleConnsPerHost = n
	tr.MaxIdleConns = n
	client := &http.Client{Transport: tr}

	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			resp, err := client.Get(*url)
			if err != nil {
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return
			}
			lat[i] = time.Since(t0)
			ok[i] = true
		}(i)
	}
	wg.Wait()
	wall := time.Since(start)

	var good []time.Duration
	for i := 0; i < n; i++ {
		if ok[i] {
			good = append(good, lat[i])
		}
	}
	errors := n - len(good)
	sort.Slice(good, func(a, b int) bool { return good[a] < good[b] })
	pct := func(p float64) string {
		if len(good) == 0 {
			return "NA"
		}
		k := int(math.Ceil(p*float64(len(good)))) - 1
		if k < 0 {
			k = 0
		}
		return fmt.Sprintf("%.3f", float64(good[k])/1e6)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	wallMs := float64(wall) / 1e6
	fmt.Printf("RESULT wall_ms=%.3f rps=%.0f p50_ms=%s p99_ms=%s peak_rss_kib=%d errors=%d\n",
		wallMs, float64(n)/wall.Seconds(), pct(0.50), pct(0.99), ru.Maxrss, errors)
}
