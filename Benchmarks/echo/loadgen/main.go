// loadgen: the one load generator for every echo server in this directory. It opens
// -c connections, and on each sends a -size byte message, waits for the whole echo, and
// repeats for -d seconds (after a -warmup). Prints one line:
//   requests/s p50_us p99_us errors
// Latency is per request (send to last echoed byte), over all connections.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "server address")
	conns := flag.Int("c", 100, "concurrent connections")
	size := flag.Int("size", 64, "message size in bytes")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "warm-up before measuring")
	flag.Parse()

	var measuring atomic.Bool
	var stop atomic.Bool
	var errors atomic.Int64
	lat := make([][]int64, *conns)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(*conns)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("tcp", *addr)
			ready.Done()
			if err != nil {
				errors.Add(1)
				return
			}
			defer c.Close()
			msg := make([]byte, *size)
			buf := make([]byte, *size)
			mine := make([]int64, 0, 1<<16)
			for !stop.Load() {
				t0 := time.Now()
				if _, err := c.Write(msg); err != nil {
					errors.Add(1)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errors.Add(1)
					return
				}
				if measuring.Load() {
					mine = append(mine, time.Since(t0).Nanoseconds())
				}
			}
			lat[i] = mine
		}(i)
	}
	ready.Wait()
	time.Sleep(*warm)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	var all []int64
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "no requests completed")
		fmt.Printf("0 0 0 %d\n", errors.Load())
		return
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	p := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))]) / 1000 }
	fmt.Printf("%.0f %.0f %.0f %d\n", float64(len(all))/elapsed.Seconds(), p(0.50), p(0.99), errors.Load())
}
