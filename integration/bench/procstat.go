package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux configuration Go supports (getconf CLK_TCK).
const clockTicks = 100

// procSample is one reading of a process's CPU time, memory and handles.
type procSample struct {
	cpu     time.Duration // utime + stime
	rss     int64         // VmRSS, bytes
	hwm     int64         // VmHWM (peak RSS), bytes
	rssFile int64         // RssFile: pages of the executable and other mapped files, bytes
	threads int
	fds     int
}

// sampleProc reads /proc/<pid>/stat, status and fd. A process that has gone
// away is an error.
func sampleProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; fields after ")" are fixed.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	s.cpu = time.Duration(ut+st) * time.Second / clockTicks

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			s.rss = parseKB(v)
		case "VmHWM":
			s.hwm = parseKB(v)
		case "RssFile":
			s.rssFile = parseKB(v)
		case "Threads":
			s.threads, _ = strconv.Atoi(v)
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	}
	return s, nil
}

// parseKB parses "1234 kB".
func parseKB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n << 10
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// machine describes the host for the report header.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("CPU: %s; kernel %s", model, kernel)
}

// machineBusy is the CPU time all processes on the machine have used
// (user, nice, system, irq, softirq, steal from the "cpu" line of /proc/stat).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// cpuMeter tells how much CPU processes outside the benchmark (other users
// of the machine) used during a measurement.
type cpuMeter struct {
	at         time.Time
	busy, ours time.Duration
	pids       []int
}

func startCPUMeter(pids ...int) *cpuMeter {
	m := &cpuMeter{at: time.Now(), busy: machineBusy(), pids: pids}
	m.ours = m.oursNow()
	return m
}

func (m *cpuMeter) oursNow() time.Duration {
	var d time.Duration
	seen := map[int]bool{}
	for _, pid := range append([]int{os.Getpid()}, m.pids...) {
		if pid == 0 || seen[pid] {
			continue
		}
		seen[pid] = true
		if s, err := sampleProc(pid); err == nil {
			d += s.cpu
		}
	}
	return d
}

// foreign returns the average number of cores used by other processes since
// the meter started.
func (m *cpuMeter) foreign() float64 {
	el := time.Since(m.at)
	if el <= 0 {
		return 0
	}
	other := (machineBusy() - m.busy) - (m.oursNow() - m.ours)
	return max(0, other.Seconds()/el.Seconds())
}
