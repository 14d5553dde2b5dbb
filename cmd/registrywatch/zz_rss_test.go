package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"io"
	"net/http"

	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

func TestZRSS(t *testing.T) {
	bin := os.Getenv("ZBIN")
	if bin == "" {
		bin = buildShipped(t)
	}
	var srcs strings.Builder
	for i, opts := range []mlflowfake.Options{{}, {MLflow3: true}, {Databricks: true, Tokens: map[string]string{"dapi-fake": "u@example.com"}}} {
		reg := mlflowfake.New(opts)
		for m := range 20 {
			name := fmt.Sprintf("model-%02d", m)
			reg.CreateModel(name, mlflowfake.ModelSpec{})
			for range 5 {
				reg.CreateVersion(name, mlflowfake.VersionSpec{})
			}
			reg.TransitionStage(name, "5", mlflowfake.StageProduction, false)
		}
		srv := reg.Start()
		defer srv.Close()
		typ, auth := "mlflow", ""
		if opts.Databricks {
			typ, auth = "databricks", "    token: dapi-fake\n"
		}
		fmt.Fprintf(&srcs, "  - name: %s-%d\n    type: %s\n    url: %s\n%s", typ, i, typ, srv.URL, auth)
	}
	cfg, _, _ := longSetup(t, srcs.String(), "")
	evictPageCache(t, bin)
	c := startChild(t, bin, "run", "-config", cfg)
	c.waitRunning()
	time.Sleep(8 * time.Second)
	pid := c.cmd.Process.Pid
	rss := procStatus(t, pid, "VmRSS")
	anon, file := procStatus(t, pid, "RssAnon"), procStatus(t, pid, "RssFile")
	t.Logf("VmRSS %.1f anon %.1f file %.1f", rss, anon, file)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	os.WriteFile("/tmp/zz_smaps.txt", b, 0o644)
	if os.Getenv("ZDUMP") != "" {
		blocks := regexp.MustCompile(`(?m)^([0-9a-f]+)-([0-9a-f]+) `).FindAllStringSubmatchIndex(string(b), -1)
		for i, bl := range blocks {
			end := len(b)
			if i+1 < len(blocks) {
				end = blocks[i+1][0]
			}
			seg := string(b[bl[0]:end])
			var lo, hi uint64
			fmt.Sscanf(seg, "%x-%x", &lo, &hi)
			am := regexp.MustCompile(`Anonymous:\s+(\d+)`).FindStringSubmatch(seg)
			var anon int
			fmt.Sscan(am[1], &anon)
			if anon > 1000 { t.Logf("region %x-%x anon %d", lo, hi, anon) }
			if anon > 1200 && anon < 2000 && (hi-lo) < 2000*1024 {
				f, _ := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
				buf := make([]byte, hi-lo)
				f.ReadAt(buf, int64(lo))
				os.WriteFile("/tmp/zz_dump.bin", buf, 0o644)
				t.Logf("dumped %x-%x", lo, hi)
			}
		}
	}
	m := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)|listen=(127\.0\.0\.1:\d+)|addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(c.output())
	if m != nil {
		addr := m[1] + m[2] + m[3]
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "go_memstats") || strings.HasPrefix(l, "go_goroutines") || strings.HasPrefix(l, "go_threads") || strings.HasPrefix(l, "go_gc_gogc") {
					t.Log(l)
				}
			}
		}
	} else {
		t.Log(c.output())
	}
	_ = exec.Command
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.wait(20 * time.Second)
}
