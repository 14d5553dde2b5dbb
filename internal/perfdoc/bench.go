package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// run is one `go test` invocation and what it printed.
type run struct {
	// Args follow `go test`.
	Args []string
	// Load is the 1-minute load average when it started.
	Load    float64
	Elapsed time.Duration
	Output  string
	Err     error
}

// goTest runs `go test args...` in dir and keeps its output.
func goTest(ctx context.Context, goCmd, dir string, args ...string) *run {
	r := &run{Args: args, Load: loadAverage()}
	cmd := exec.CommandContext(ctx, goCmd, append([]string{"test"}, args...)...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r.Elapsed, r.Output = time.Since(start), string(out)
	if err != nil {
		r.Err = fmt.Errorf("go test %s: %w\n%s", strings.Join(args, " "), err, tail(r.Output, 15))
	}
	return r
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// result is one benchmark line: its iterations and metrics by unit.
type result struct {
	Name       string
	Iterations int64
	Metrics    map[string]float64
}

// benchLine matches a result line of `go test -bench`: the name (with the
// GOMAXPROCS suffix), the iterations and the metrics.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)

// parseBench returns the result lines of a `go test -bench` output, in order.
// A metric is a value followed by its unit.
func parseBench(out string) ([]result, error) {
	var rs []result
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: iterations %q: %w", m[1], m[2], err)
		}
		fields := strings.Fields(m[3])
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("%s: metrics %q are not value-unit pairs", m[1], m[3])
		}
		r := result{Name: m[1], Iterations: n, Metrics: map[string]float64{}}
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: metric %q: %w", m[1], fields[i]+" "+fields[i+1], err)
			}
			r.Metrics[fields[i+1]] = v
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// metric returns the median of unit over the results named name (several
// with -count), and whether there was any.
func metric(rs []result, name, unit string) (float64, bool) {
	var vs []float64
	for _, r := range rs {
		if v, ok := r.Metrics[unit]; ok && r.Name == name {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// idleRSS matches the line TestLongDaemon/IdleMemory logs.
var idleRSS = regexp.MustCompile(`VmRSS ([0-9.]+) MB \(anonymous ([0-9.]+) MB, the binary's pages ([0-9.]+) MB\), VmHWM ([0-9.]+) MB`)

// memory is the resident memory of the idle daemon, in MB.
type memory struct{ RSS, Anon, File, HWM float64 }

func parseIdleRSS(out string) (memory, bool) {
	m := idleRSS.FindStringSubmatch(out)
	if m == nil {
		return memory{}, false
	}
	var v [4]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(m[i+1], 64)
	}
	return memory{RSS: v[0], Anon: v[1], File: v[2], HWM: v[3]}, true
}

// loadAverage returns the 1-minute load average (0 when unknown).
func loadAverage() float64 {
	b := readFile("/proc/loadavg")
	f := strings.Fields(b)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// goCPU returns the processor `go test -bench` names in its header, or "".
func goCPU(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if cpu, ok := strings.CutPrefix(l, "cpu: "); ok {
			return strings.TrimSpace(cpu)
		}
	}
	return ""
}

// cpuModel returns the model name of the first CPU in /proc/cpuinfo.
func cpuModel() string {
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// output runs a command and returns its trimmed output, or "" on failure.
func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}
