// Tokio peer for `spindle bench --peers`: the Spindle rows measured on Tokio tasks, its
// sync primitives and tokio::net. Each run does one measurement and prints
// `VALUE ALLOCS_PER_OP CTXSW_PER_OP`: VALUE in the row's unit (ns, messages/s or RSS
// bytes), heap allocations (a counting global allocator) and context switches (getrusage
// nvcsw+nivcsw) over the measured window, each divided by the ops. Every row runs on a
// multi-thread runtime with one worker per CPU, except tokio-1thread (current_thread).
//
//   tokio-peer --list
//   tokio-peer ROW SYSTEM [--scale S]
use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::yield_now;

/// Counts every allocation (alloc, alloc_zeroed, realloc), then forwards to System.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.realloc(p, l, size)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default)]
struct Res {
    value: f64,
    allocs: f64,
    ctxsw: f64,
}

fn ctx_switches() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0, "getrusage");
    (ru.ru_nvcsw + ru.ru_nivcsw) as u64
}

fn resident_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("parse statm");
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64
}

/// The measured window: allocations and context switches are read outside the timing.
struct Window {
    allocs: u64,
    ctxsw: u64,
    t0: Instant,
}

struct Closed {
    elapsed: Duration,
    allocs: u64,
    ctxsw: u64,
}

fn begin() -> Window {
    let (allocs, ctxsw) = (ALLOCS.load(Relaxed), ctx_switches());
    Window { allocs, ctxsw, t0: Instant::now() }
}

impl Window {
    fn end(self) -> Closed {
        let elapsed = self.t0.elapsed();
        Closed { elapsed, allocs: ALLOCS.load(Relaxed) - self.allocs, ctxsw: ctx_switches() - self.ctxsw }
    }
}

impl Closed {
    fn ns_per_op(&self, ops: usize) -> Res {
        let ops = ops as f64;
        Res { value: self.elapsed.as_nanos() as f64 / ops, allocs: self.allocs as f64 / ops, ctxsw: self.ctxsw as f64 / ops }
    }
    fn per_second(&self, ops: usize) -> Res {
        Res { value: ops as f64 / self.elapsed.as_secs_f64(), ..self.ns_per_op(ops) }
    }
}

fn iters(base: usize, scale: f64) -> usize {
    ((base as f64 * scale) as usize).max(1_000)
}

/// Runs `f` as a task on a multi-thread runtime with one worker per CPU (or on a
/// current_thread runtime) and returns its result.
fn on<F: Future<Output = Res> + Send + 'static>(one_thread: bool, f: F) -> Res {
    let mut b = if one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
        b
    };
    let rt = b.enable_all().build().expect("build the runtime");
    rt.block_on(async { tokio::spawn(f).await.expect("measuring task") })
}

/// task.yield: ns per yield_now in one task.
async fn yields(n: usize) -> Res {
    for _ in 0..1_000 {
        yield_now().await;
    }
    let w = begin();
    for _ in 0..n {
        yield_now().await;
    }
    w.end().ns_per_op(n)
}

/// task.pingpong: ns per one-way hand-off between two tasks through two Notify.
async fn pingpong(n: usize) -> Res {
    async fn rounds(rounds: usize) {
        let (ping, pong) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (ping2, pong2) = (ping.clone(), pong.clone());
        let b = tokio::spawn(async move {
            for _ in 0..rounds {
                ping2.notified().await;
                pong2.notify_one();
            }
        });
        for _ in 0..rounds {
            ping.notify_one();
            pong.notified().await;
        }
        b.await.expect("pong task");
    }
    rounds(500).await;
    let w = begin();
    rounds(n / 2).await;
    w.end().ns_per_op(n / 2 * 2)
}

/// task.spawn: ns per empty task spawned and joined, in waves of 1,000.
async fn spawns(n: usize) -> Res {
    async fn waves(children: usize) {
        let mut handles = Vec::with_capacity(1_000);
        for _ in 0..children / 1_000 {
            handles.extend((0..1_000).map(|_| tokio::spawn(async {})));
            for h in handles.drain(..) {
                h.await.expect("child");
            }
        }
    }
    waves(1_000).await;
    let w = begin();
    waves(n / 1_000 * 1_000).await;
    w.end().ns_per_op(n / 1_000 * 1_000)
}

/// task.memory: RSS bytes per task suspended in a watch channel's changed(), after a
/// warm-up round of a tenth of the size. The last task to start (and to finish) says so.
async fn memory(count: usize) -> Res {
    struct Gate {
        n: usize,
        started: AtomicUsize,
        all_started: Notify,
        finished: AtomicUsize,
        all_finished: Notify,
    }
    let mut r = Res::default();
    for n in [count / 10, count] {
        let (tx, rx) = watch::channel(());
        let gate = Arc::new(Gate {
            n,
            started: AtomicUsize::new(0),
            all_started: Notify::new(),
            finished: AtomicUsize::new(0),
            all_finished: Notify::new(),
        });
        let before = resident_bytes();
        let w = begin();
        for _ in 0..n {
            let (gate, mut rx) = (gate.clone(), rx.clone());
            tokio::spawn(async move {
                if gate.started.fetch_add(1, Relaxed) + 1 == gate.n {
                    gate.all_started.notify_one();
                }
                let _ = rx.changed().await;
                if gate.finished.fetch_add(1, Relaxed) + 1 == gate.n {
                    gate.all_finished.notify_one();
                }
            });
        }
        gate.all_started.notified().await;
        let m = w.end();
        let after = resident_bytes();
        tx.send(()).expect("release");
        gate.all_finished.notified().await;
        r = Res { value: (after - before) / n as f64, ..m.ns_per_op(n) };
    }
    r
}

/// channel.rtt.*: ns per round trip, A sends on ab and waits on ba, B echoes; two
/// mpsc channels of one slot.
async fn rtt(n: usize) -> Res {
    let (ab, mut ab_rx) = mpsc::channel::<usize>(1);
    let (ba, mut ba_rx) = mpsc::channel::<usize>(1);
    tokio::spawn(async move {
        while let Some(v) = ab_rx.recv().await {
            if ba.send(v).await.is_err() {
                break;
            }
        }
    });
    for i in 0..1_000 {
        ab.send(i).await.expect("send");
        ba_rx.recv().await.expect("echo");
    }
    let w = begin();
    for i in 0..n {
        ab.send(i).await.expect("send");
        ba_rx.recv().await.expect("echo");
    }
    w.end().ns_per_op(n)
}

/// channel.throughput.buffered.*: messages/s from `producers` tasks into one consumer
/// through an mpsc channel of 1,024 slots.
async fn throughput(producers: usize, n: usize) -> Res {
    async fn run(producers: usize, messages: usize) {
        let (tx, mut rx) = mpsc::channel::<usize>(1_024);
        for p in 0..producers {
            let share = messages / producers + if p == 0 { messages % producers } else { 0 };
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..share {
                    tx.send(i).await.expect("send");
                }
            });
        }
        drop(tx);
        let mut got = 0;
        while rx.recv().await.is_some() {
            got += 1;
        }
        assert_eq!(got, messages, "messages received");
    }
    run(producers, 10_000).await;
    let w = begin();
    run(producers, n).await;
    w.end().per_second(n)
}

/// tcp.rtt.task: ns per 1-byte loopback round trip between a client task and an echo
/// server task in this process, TCP_NODELAY on both ends.
async fn tcp_rtt(n: usize) -> Res {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).await.is_ok() {
            s.write_all(&b).await.expect("server write");
        }
    });
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut b = [42u8; 1];
    for _ in 0..1_000 {
        c.write_all(&b).await.expect("client write");
        c.read_exact(&mut b).await.expect("client read");
    }
    let w = begin();
    for _ in 0..n {
        c.write_all(&b).await.expect("client write");
        c.read_exact(&mut b).await.expect("client read");
    }
    w.end().ns_per_op(n)
}

type Row = (&'static str, &'static str, fn(f64) -> Res);

const ROWS: &[Row] = &[
    ("task.yield", "tokio", |s| on(false, yields(iters(1_000_000, s)))),
    ("task.pingpong", "tokio", |s| on(false, pingpong(iters(1_000_000, s)))),
    ("task.spawn", "tokio", |s| on(false, spawns(iters(1_000_000, s)))),
    ("task.memory", "tokio", |_| on(false, memory(100_000))),
    ("channel.rtt.task", "tokio", |s| on(false, rtt(iters(200_000, s)))),
    ("channel.rtt.fiber", "tokio-1thread", |s| on(true, rtt(iters(1_000_000, s)))),
    ("channel.throughput.buffered.1p", "tokio", |s| on(false, throughput(1, iters(2_000_000, s)))),
    ("channel.throughput.buffered.4p", "tokio", |s| on(false, throughput(4, iters(2_000_000, s)))),
    ("tcp.rtt.task", "tokio", |s| on(false, tcp_rtt(iters(50_000, s)))),
];

fn fail(msg: &str) -> ! {
    eprintln!("tokio-peer: {msg}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 1 && args[0] == "--list" {
        for (row, system, _) in ROWS {
            println!("{row} {system}");
        }
        return;
    }
    let scale = match args.len() {
        2 => 1.0,
        4 if args[2] == "--scale" => match args[3].parse::<f64>() {
            Ok(s) if s > 0.0 => s,
            _ => fail(&format!("bad --scale {:?}", args[3])),
        },
        _ => fail("usage: tokio-peer --list | ROW SYSTEM [--scale S]"),
    };
    match ROWS.iter().find(|(row, system, _)| *row == args[0] && *system == args[1]) {
        Some((_, _, run)) => {
            let r = run(scale);
            println!("{:.3} {:.6} {:.6}", r.value, r.allocs, r.ctxsw);
        }
        None => fail(&format!("unknown row/system: {} {}", args[0], args[1])),
    }
}
