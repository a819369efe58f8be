// Go peer for `spindle bench --peers`: the Spindle rows measured on goroutines and
// channels. Each run does one measurement and prints `VALUE ALLOCS_PER_OP CTXSW_PER_OP`:
// VALUE in the row's unit (ns, messages/s or RSS bytes), heap allocations
// (runtime.MemStats.Mallocs) and context switches (getrusage nvcsw+nivcsw) over the
// measured window, each divided by the ops.
//
//	go-peer --list
//	go-peer ROW SYSTEM [--scale S]
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type row struct {
	name, system string
	run          func(scale float64) result
}

type result struct{ value, allocs, ctxsw float64 }

var rows = []row{
	{"task.yield", "go", func(s float64) result { return yield(iters(1_000_000, s)) }},
	{"task.pingpong", "go", func(s float64) result { return pingpong(iters(1_000_000, s)) }},
	{"task.spawn", "go", func(s float64) result { return spawn(iters(1_000_000, s)) }},
	{"task.memory", "go", func(float64) result { return memory(100_000) }},
	{"fiber.switch", "go-1proc", func(s float64) result { return oneProc(func() result { return switches(iters(10_000_000, s)) }) }},
	{"fiber.memory.100k", "go", func(float64) result { return memory(100_000) }},
	{"fiber.memory.1m", "go", func(float64) result { return memory(1_000_000) }},
	{"channel.rtt.task", "go", func(s float64) result { return rtt(iters(200_000, s)) }},
	{"channel.rtt.fiber", "go-1proc", func(s float64) result { return oneProc(func() result { return rtt(iters(1_000_000, s)) }) }},
	{"channel.throughput.1p", "go", func(s float64) result { return throughput(1, 0, iters(500_000, s)) }},
	{"channel.throughput.4p", "go", func(s float64) result { return throughput(4, 0, iters(500_000, s)) }},
	{"channel.throughput.buffered.1p", "go", func(s float64) result { return throughput(1, 1024, iters(2_000_000, s)) }},
	{"channel.throughput.buffered.4p", "go", func(s float64) result { return throughput(4, 1024, iters(2_000_000, s)) }},
	{"tcp.rtt.task", "go", func(s float64) result { return tcpRTT(iters(50_000, s)) }},
}

func iters(base int, scale float64) int {
	n := int(float64(base) * scale)
	if n < 1_000 {
		n = 1_000
	}
	return n
}

// window counts allocations and context switches between begin and end (both read
// outside the timed part) and times the part between them.
type window struct {
	mallocs, ctxsw uint64
	t0             time.Time
	elapsed        time.Duration
}

func ctxSwitches() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return uint64(ru.Nvcsw + ru.Nivcsw)
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func begin() *window {
	w := &window{mallocs: mallocs(), ctxsw: ctxSwitches()}
	w.t0 = time.Now()
	return w
}

func (w *window) end() {
	w.elapsed = time.Since(w.t0)
	w.mallocs = mallocs() - w.mallocs
	w.ctxsw = ctxSwitches() - w.ctxsw
}

// nsPerOp and perSecond turn a closed window into a result over ops.
func (w *window) nsPerOp(ops int) result {
	return result{float64(w.elapsed.Nanoseconds()) / float64(ops), float64(w.mallocs) / float64(ops), float64(w.ctxsw) / float64(ops)}
}

func (w *window) perSecond(ops int) result {
	r := w.nsPerOp(ops)
	r.value = float64(ops) / w.elapsed.Seconds()
	return r
}

// oneProc runs f with GOMAXPROCS=1: the goroutines share one OS thread.
func oneProc(f func() result) result {
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	return f()
}

// task.yield: ns per runtime.Gosched in one goroutine.
func yield(n int) result {
	done := make(chan result)
	go func() {
		for i := 0; i < 1_000; i++ {
			runtime.Gosched()
		}
		w := begin()
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
		w.end()
		done <- w.nsPerOp(n)
	}()
	return <-done
}

// task.pingpong: ns per one-way hand-off between two goroutines over two unbuffered
// channels (n hand-offs = n/2 rounds).
func pingpong(n int) result {
	round := func(rounds int) {
		ping, pong := make(chan struct{}), make(chan struct{})
		go func() {
			for i := 0; i < rounds; i++ {
				<-ping
				pong <- struct{}{}
			}
		}()
		for i := 0; i < rounds; i++ {
			ping <- struct{}{}
			<-pong
		}
	}
	round(500)
	w := begin()
	round(n / 2)
	w.end()
	return w.nsPerOp(n / 2 * 2)
}

// task.spawn: ns per goroutine spawned and finished, in waves of 1,000 joined by a
// WaitGroup.
func spawn(n int) result {
	waves := func(children int) {
		var wg sync.WaitGroup
		for done := 0; done < children; done += 1_000 {
			wg.Add(1_000)
			for i := 0; i < 1_000; i++ {
				go wg.Done()
			}
			wg.Wait()
		}
	}
	waves(1_000)
	w := begin()
	waves(n / 1_000 * 1_000)
	w.end()
	return w.nsPerOp(n / 1_000 * 1_000)
}

// residentBytes reads the resident set from /proc/self/statm.
func residentBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		fail("statm: %v", err)
	}
	return pages * float64(os.Getpagesize())
}

// task.memory, fiber.memory.*: RSS bytes per goroutine blocked on a receive, after a
// warm-up round of a tenth of the size.
func memory(count int) result {
	var r result
	for _, n := range []int{count / 10, count} {
		release := make(chan struct{})
		var started, finished sync.WaitGroup
		started.Add(n)
		finished.Add(n)
		before := residentBytes()
		w := begin()
		for i := 0; i < n; i++ {
			go func() {
				started.Done()
				<-release
				finished.Done()
			}()
		}
		started.Wait()
		w.end()
		after := residentBytes()
		close(release)
		finished.Wait()
		r = w.nsPerOp(n)
		r.value = (after - before) / float64(n)
	}
	return r
}

// fiber.switch (go-1proc): two goroutines on one thread, each looping Gosched; every
// Gosched is one switch.
func switches(n int) result {
	run := func(total int) {
		var wg sync.WaitGroup
		wg.Add(2)
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < total/2; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
	}
	run(1_000)
	w := begin()
	run(n)
	w.end()
	return w.nsPerOp(n / 2 * 2)
}

// channel.rtt.*: ns per round trip, A sends on ab and waits on ba, B echoes; unbuffered.
func rtt(n int) result {
	ab, ba := make(chan int), make(chan int)
	go func() {
		for v := range ab {
			ba <- v
		}
	}()
	for i := 0; i < 1_000; i++ {
		ab <- i
		<-ba
	}
	w := begin()
	for i := 0; i < n; i++ {
		ab <- i
		<-ba
	}
	w.end()
	close(ab)
	return w.nsPerOp(n)
}

// channel.throughput.*: messages/s from `producers` goroutines into one consumer,
// through an unbuffered channel (slots 0) or one of `slots` slots.
func throughput(producers, slots, n int) result {
	run := func(messages int) {
		ch := make(chan int, slots)
		for p := 0; p < producers; p++ {
			share := messages / producers
			if p == 0 {
				share += messages % producers
			}
			go func(share int) {
				for i := 0; i < share; i++ {
					ch <- i
				}
			}(share)
		}
		for i := 0; i < messages; i++ {
			<-ch
		}
	}
	run(10_000)
	w := begin()
	run(n)
	w.end()
	return w.perSecond(n)
}

// tcp.rtt.task: ns per 1-byte loopback round trip, client and echo server goroutines in
// this process, TCP_NODELAY on both ends.
func tcpRTT(n int) result {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		c.(*net.TCPConn).SetNoDelay(true)
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				c.Close()
				return
			}
			if _, err := c.Write(buf); err != nil {
				fail("server write: %v", err)
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fail("dial: %v", err)
	}
	c.(*net.TCPConn).SetNoDelay(true)
	buf := []byte{42}
	trip := func() {
		if _, err := c.Write(buf); err != nil {
			fail("client write: %v", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			fail("client read: %v", err)
		}
	}
	for i := 0; i < 1_000; i++ {
		trip()
	}
	w := begin()
	for i := 0; i < n; i++ {
		trip()
	}
	w.end()
	c.Close()
	ln.Close()
	return w.nsPerOp(n)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go-peer: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--list" {
		for _, r := range rows {
			fmt.Println(r.name, r.system)
		}
		return
	}
	scale := 1.0
	if len(args) == 4 && args[2] == "--scale" {
		s, err := strconv.ParseFloat(args[3], 64)
		if err != nil || s <= 0 {
			fail("bad --scale %q", args[3])
		}
		scale = s
	} else if len(args) != 2 {
		fail("usage: go-peer --list | ROW SYSTEM [--scale S]")
	}
	for _, r := range rows {
		if r.name == args[0] && r.system == args[1] {
			res := r.run(scale)
			fmt.Printf("%.3f %.6f %.6f\n", res.value, res.allocs, res.ctxsw)
			return
		}
	}
	fail("unknown row/system: %s %s", args[0], args[1])
}
