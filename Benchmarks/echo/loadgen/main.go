// loadgen: the one load generator for every echo server in this directory. It opens
// -c connections, and on each sends a -size byte message, waits for the whole echo, and
// repeats for -d seconds (after a -warmup). Prints one line of key=value fields:
//
//	rps=… p50_us=… p99_us=… errors=… dial_errors=… requests=… total=… secs=…
//	  [srv_ticks=… srv_cpu_us_per_req=… srv_cpu_pct=…]
//
// rps, p50_us, p99_us and requests cover the measured window only (a request counts when
// its echo completes inside it); total counts every request completed, warm-up included.
// errors counts every failed dial, write or read over the whole run (dial_errors is the
// part of it that failed to connect); a connection stops at its first error.
// Latency is per request (send to last echoed byte), over all connections.
//
// With -pid, the server's CPU time (utime+stime, fields 14 and 15 of /proc/PID/stat, all
// its threads) is read just before and just after the measured window: srv_ticks is the
// difference in clock ticks (-clk-tck per second, `getconf CLK_TCK`), srv_cpu_us_per_req
// that time over the window's requests, srv_cpu_pct that time as a percentage of one core.
// lg_cpu_pct is the load generator's own CPU time over the window, as a percentage of one
// core (read the same way, from /proc/self/stat): near 100 × its CPUs, the client is the
// bottleneck.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cpuTicks returns utime+stime of process pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the
	// last ')'. What follows starts at field 3, so utime (14) and stime (15) are at 11, 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return u + s, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "server address")
	conns := flag.Int("c", 100, "concurrent connections")
	size := flag.Int("size", 64, "message size in bytes")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "warm-up before measuring")
	pid := flag.Int("pid", 0, "server process whose CPU time to measure over the window (0: none)")
	clkTck := flag.Int("clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	flag.Parse()

	var measuring atomic.Bool
	var stop atomic.Bool
	var errors, dialErrors, total atomic.Int64
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
				dialErrors.Add(1)
				return
			}
			defer c.Close()
			msg := make([]byte, *size)
			buf := make([]byte, *size)
			mine := make([]int64, 0, 1<<12)
			// Keep what this connection measured even when it stops at an error.
			defer func() { lat[i] = mine }()
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
				total.Add(1)
				if measuring.Load() {
					mine = append(mine, time.Since(t0).Nanoseconds())
				}
			}
		}(i)
	}
	ready.Wait()
	time.Sleep(*warm)

	self0, selfErr := cpuTicks(os.Getpid())
	cpu0, cpuErr := int64(0), error(nil)
	if *pid > 0 {
		cpu0, cpuErr = cpuTicks(*pid)
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1 := int64(0)
	if *pid > 0 && cpuErr == nil {
		cpu1, cpuErr = cpuTicks(*pid)
	}
	self1 := int64(0)
	if selfErr == nil {
		self1, selfErr = cpuTicks(os.Getpid())
	}
	stop.Store(true)
	wg.Wait()

	var all []int64
	for _, l := range lat {
		all = append(all, l...)
	}
	n := len(all)
	rps, p50, p99 := 0.0, 0.0, 0.0
	if n == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: no requests completed in the measured window")
	} else {
		sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
		p := func(q float64) float64 { return float64(all[int(q*float64(n-1))]) / 1000 }
		rps, p50, p99 = float64(n)/elapsed.Seconds(), p(0.50), p(0.99)
	}
	line := fmt.Sprintf("rps=%.0f p50_us=%.0f p99_us=%.0f errors=%d dial_errors=%d requests=%d total=%d secs=%.3f",
		rps, p50, p99, errors.Load(), dialErrors.Load(), n, total.Load(), elapsed.Seconds())
	if *pid > 0 {
		if cpuErr != nil {
			fmt.Fprintln(os.Stderr, "loadgen: server CPU time:", cpuErr)
			line += " srv_ticks=NA srv_cpu_us_per_req=NA srv_cpu_pct=NA"
		} else {
			ticks := cpu1 - cpu0
			cpuUs := float64(ticks) * 1e6 / float64(*clkTck)
			perReq := "NA"
			if n > 0 {
				perReq = fmt.Sprintf("%.2f", cpuUs/float64(n))
			}
			line += fmt.Sprintf(" srv_ticks=%d srv_cpu_us_per_req=%s srv_cpu_pct=%.0f",
				ticks, perReq, cpuUs/1e4/elapsed.Seconds())
		}
	}
	if selfErr != nil {
		line += " lg_cpu_pct=NA"
	} else {
		line += fmt.Sprintf(" lg_cpu_pct=%.0f", float64(self1-self0)*100/float64(*clkTck)/elapsed.Seconds())
	}
	fmt.Println(line)
}
