// weft-peer-go: weft-bench's workloads (BENCHMARKS.md) written the way a Go
// programmer would write them, printing the same lines with peer=go, so that
// the two can be set side by side on one machine. Not part of the build or
// of CI: benchmarks/peers/run.sh builds it where Debian's golang-go is
// installed.
//
// Each figure is the median of --repeat runs. --workers sets GOMAXPROCS
// (a list runs each workload once per value, as weft-bench does). A process
// has one Go runtime, so by default the runs of timers and parked share it,
// and later runs reuse the goroutines and stacks earlier ones freed (warm);
// with --fresh each of those runs is a new process (cold: weft-bench gives
// each a runtime of its own, in one process).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var quick = flag.Bool("quick", false, "sizes about 10x smaller")
var repeat = flag.Int("repeat", 5, "runs per figure (median)")
var workersFlag = flag.String("workers", "", "GOMAXPROCS values, comma-separated (default: one per core)")
var fresh = flag.Bool("fresh", false, "run each repetition of parked and timers in a fresh process")
var one = flag.String("one", "", "(internal) one run of parked or timers; prints its figures")
var oneSize = flag.Int("one-size", 0, "(internal) the size for --one")

var workers int

func wrong(workload, what string) {
	fmt.Fprintf(os.Stderr, "weft-peer-go: %s: wrong result: %s\n", workload, what)
	os.Exit(1)
}

// The middle of v (sorted in place).
func middle(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func median(fn func() float64) float64 {
	runs := make([]float64, 0, *repeat)
	for i := 0; i < *repeat; i++ {
		runs = append(runs, fn())
	}
	return middle(runs)
}

func emit(workload string, n int, metric string, v float64) {
	fmt.Printf("peer=go workload=%s param=%d@%d metric=%s value=%s\n", workload, n, workers, metric,
		strconv.FormatFloat(v, 'f', -1, 64))
}

func sizeOf(full int) int {
	if *quick {
		return full / 10
	}
	return full
}

func spawn() {
	n := sizeOf(1000000)
	emit("spawn", n, "ns_per_op", median(func() float64 {
		var ran atomic.Int64
		var wg sync.WaitGroup
		wg.Add(n)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func() {
				ran.Add(1)
				wg.Done()
			}()
		}
		wg.Wait()
		per := float64(time.Since(t0).Nanoseconds()) / float64(n)
		if ran.Load() != int64(n) {
			wrong("spawn", "ran "+strconv.FormatInt(ran.Load(), 10))
		}
		return per
	}))
}

func fibSerial(n int) uint64 {
	if n < 2 {
		return uint64(n)
	}
	return fibSerial(n-1) + fibSerial(n-2)
}

// The join is a receive from a channel of one, as Go code waits for one value.
func fibGo(n int) uint64 {
	if n < 2 {
		return uint64(n)
	}
	left := make(chan uint64, 1)
	go func() { left <- fibGo(n - 1) }()
	right := fibGo(n - 2)
	return <-left + right
}

func fib() {
	n := 30
	if *quick {
		n = 25
	}
	expect := fibSerial(n)
	emit("fib", n, "ms", median(func() float64 {
		t0 := time.Now()
		got := fibGo(n)
		ms := float64(time.Since(t0).Nanoseconds()) / 1e6
		if got != expect {
			wrong("fib", fmt.Sprint(got))
		}
		return ms
	}))
}

func skynetNode(first, size uint64, up chan<- uint64) {
	if size == 1 {
		up <- first
		return
	}
	down := make(chan uint64, 10)
	child := size / 10
	for i := uint64(0); i < 10; i++ {
		go skynetNode(first+i*child, child, down)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-down
	}
	up <- sum
}

func skynet() {
	leaves := uint64(sizeOf(1000000))
	expect := leaves * (leaves - 1) / 2
	emit("skynet", int(leaves), "ms", median(func() float64 {
		root := make(chan uint64)
		t0 := time.Now()
		go skynetNode(0, leaves, root)
		sum := <-root
		ms := float64(time.Since(t0).Nanoseconds()) / 1e6
		if sum != expect {
			wrong("skynet", fmt.Sprint(sum))
		}
		return ms
	}))
}

func pingpongRoundTripNs(n int) float64 {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	sum := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		sum += <-pong
	}
	per := float64(time.Since(t0).Nanoseconds()) / float64(n)
	close(ping)
	if sum != n*(n+1)/2 {
		wrong("pingpong", fmt.Sprint(sum))
	}
	return per
}

func pingpong() {
	n := sizeOf(1000000)
	emit("pingpong", n, "ns_per_op", median(func() float64 { return pingpongRoundTripNs(n) }))
}

// One run of parked with p goroutines: spawn_ms, ns_per_op (beside),
// ns_per_op_unparked (alone, before), release_ms.
func parkedOnce(p, rounds int) [4]float64 {
	alone := pingpongRoundTripNs(rounds)
	chans := make([]chan int, p)
	for i := range chans {
		chans[i] = make(chan int)
	}
	var started, received atomic.Int64
	var wg sync.WaitGroup
	wg.Add(p)
	t0 := time.Now()
	for i := 0; i < p; i++ {
		go func(c chan int) {
			started.Add(1)
			received.Add(int64(<-c))
			wg.Done()
		}(chans[i])
	}
	for started.Load() != int64(p) {
		runtime.Gosched()
	}
	spawnMs := float64(time.Since(t0).Nanoseconds()) / 1e6
	beside := pingpongRoundTripNs(rounds)
	t0 = time.Now()
	for _, c := range chans {
		c <- 1
	}
	wg.Wait()
	releaseMs := float64(time.Since(t0).Nanoseconds()) / 1e6
	if received.Load() != int64(p) {
		wrong("parked", fmt.Sprint(received.Load()))
	}
	return [4]float64{spawnMs, beside, alone, releaseMs}
}

func parked() {
	rounds := sizeOf(200000)
	names := []string{"spawn_ms", "ns_per_op", "ns_per_op_unparked", "release_ms"}
	for _, p := range []int{10000, 100000} {
		p = sizeOf(p)
		runs := oneOrFresh("parked", p, func() []float64 { r := parkedOnce(p, rounds); return r[:] })
		for k, name := range names {
			emit("parked", p, name, medianOf(runs, k))
		}
	}
}

// One run of timers with n goroutines: ms, late_p50_us, late_p99_us.
func timersOnce(n int) []float64 {
	late := make([]float64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	seed := uint64(0x2545F4914F6CDD1D)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		seed = seed*6364136223846793005 + 1442695040888963407 // the same LCG as weft-bench
		d := time.Duration((seed>>33)%100000) * time.Microsecond
		go func(i int, d time.Duration) {
			deadline := time.Now().Add(d)
			time.Sleep(time.Until(deadline))
			woke := time.Now()
			if woke.Before(deadline) {
				wrong("timers", "a timer fired early")
			}
			late[i] = float64(woke.Sub(deadline).Nanoseconds()) / 1e3
			wg.Done()
		}(i, d)
	}
	wg.Wait()
	total := float64(time.Since(t0).Nanoseconds()) / 1e6
	sort.Float64s(late)
	return []float64{total, late[n/2], late[n*99/100]}
}

func timers() {
	n := sizeOf(100000)
	runs := oneOrFresh("timers", n, func() []float64 { return timersOnce(n) })
	for k, name := range []string{"ms", "late_p50_us", "late_p99_us"} {
		emit("timers", n, name, medianOf(runs, k))
	}
}

// --repeat runs of a workload that has several figures per run: in this
// process, or with --fresh each in a new process of its own (this program
// again, with the hidden --one flag), as weft-bench gives each run of
// parked and timers a runtime of its own.
func oneOrFresh(workload string, size int, once func() []float64) [][]float64 {
	var runs [][]float64
	for r := 0; r < *repeat; r++ {
		if !*fresh {
			runs = append(runs, once())
			continue
		}
		args := []string{"--one", workload, "--one-size", strconv.Itoa(size), "--workers", strconv.Itoa(workers)}
		if *quick {
			args = append(args, "--quick") // the pingpong rounds of parked shrink too
		}
		out, err := exec.Command(os.Args[0], args...).Output()
		if err != nil {
			wrong(workload, "the run in a fresh process failed: "+err.Error())
		}
		var figures []float64
		for _, f := range strings.Fields(string(out)) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				wrong(workload, "a fresh process printed "+f)
			}
			figures = append(figures, v)
		}
		runs = append(runs, figures)
	}
	return runs
}

func medianOf(runs [][]float64, k int) float64 {
	v := make([]float64, 0, len(runs))
	for _, r := range runs {
		v = append(v, r[k])
	}
	return middle(v)
}

func cpuMs() float64 {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e6
}

func idlewait() {
	emit("idlewait", 1000, "cpu_ms", median(func() float64 {
		runtime.GC() // nothing left over from earlier workloads for the GC to do in the second
		time.Sleep(20 * time.Millisecond)
		c0 := cpuMs()
		t0 := time.Now()
		<-time.After(time.Second)
		if time.Since(t0) < time.Second {
			wrong("idlewait", "the timeout ended early")
		}
		return cpuMs() - c0
	}))
}

func increments(goroutines, each int, body func()) float64 {
	var wg sync.WaitGroup
	wg.Add(goroutines)
	t0 := time.Now()
	for g := 0; g < goroutines; g++ {
		go func() {
			for i := 0; i < each; i++ {
				body()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(goroutines*each)
}

func mutex() {
	goroutines, each := 1000, sizeOf(1000)
	n := goroutines * each
	emit("mutex", n, "ns_per_op", median(func() float64 {
		var m sync.Mutex
		counter := 0
		ns := increments(goroutines, each, func() {
			m.Lock()
			counter++
			m.Unlock()
		})
		if counter != n {
			wrong("mutex", fmt.Sprint(counter))
		}
		return ns
	}))
	emit("mutex", n, "ns_per_op_atomic", median(func() float64 {
		var counter atomic.Int64
		ns := increments(goroutines, each, func() { counter.Add(1) })
		if counter.Load() != int64(n) {
			wrong("mutex", fmt.Sprint(counter.Load()))
		}
		return ns
	}))
}

func main() {
	flag.Parse()
	if *repeat < 1 {
		fmt.Fprintf(os.Stderr, "weft-peer-go: --repeat: must be at least 1\n")
		os.Exit(2)
	}
	if *one != "" {
		w, _ := strconv.Atoi(*workersFlag)
		runtime.GOMAXPROCS(w)
		var figures []float64
		switch *one {
		case "parked":
			r := parkedOnce(*oneSize, sizeOf(200000))
			figures = r[:]
		case "timers":
			figures = timersOnce(*oneSize)
		default:
			os.Exit(2)
		}
		for _, f := range figures {
			fmt.Println(strconv.FormatFloat(f, 'f', -1, 64))
		}
		return
	}
	all := map[string]func(){"spawn": spawn, "fib": fib, "skynet": skynet, "pingpong": pingpong, "parked": parked,
		"timers": timers, "idlewait": idlewait, "mutex": mutex}
	order := []string{"spawn", "fib", "skynet", "pingpong", "parked", "timers", "idlewait", "mutex"}
	names := flag.Args()
	if len(names) == 0 {
		names = order
	}
	counts := []int{runtime.NumCPU()}
	if *workersFlag != "" {
		counts = nil
		for _, w := range strings.Split(*workersFlag, ",") {
			v, err := strconv.Atoi(w)
			if err != nil || v < 1 {
				fmt.Fprintf(os.Stderr, "weft-peer-go: --workers: not a positive number: %q\n", w)
				os.Exit(2)
			}
			counts = append(counts, v)
		}
	}
	for _, name := range names {
		fn, ok := all[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "weft-peer-go: unknown workload %q\n", name)
			os.Exit(2)
		}
		for _, w := range counts {
			workers = w
			runtime.GOMAXPROCS(w)
			fn()
		}
	}
}
