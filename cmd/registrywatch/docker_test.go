package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the module root, relative to this package.
const repoRoot = "../.."

// dockerfileBuild returns the go build command of the Dockerfile's build
// stage (the RUN line holding "go build").
func dockerfileBuild(t *testing.T) (cmd string, lines []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(string(b), "\n")
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "RUN "); ok && strings.Contains(rest, "go build") {
			if cmd != "" {
				t.Fatal("the Dockerfile has two go build commands")
			}
			cmd = strings.TrimSpace(rest)
		}
	}
	if cmd == "" {
		t.Fatal("no go build in the Dockerfile")
	}
	return cmd, lines
}

// makefileStatic returns the Makefile's static recipe with its variables
// expanded ($(GO) as go, $(VERSION) as ${VERSION}).
func makefileStatic(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{"GO": "go", "VERSION": "${VERSION}"}
	assign := regexp.MustCompile(`^([A-Z_]+) \?*= (.*)$`)
	var recipe string
	inStatic := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if m := assign.FindStringSubmatch(l); m != nil && m[1] != "GO" && m[1] != "VERSION" {
			vars[m[1]] = m[2]
		}
		switch {
		case l == "static:":
			inStatic = true
		case inStatic && strings.HasPrefix(l, "\t"):
			recipe += strings.TrimSpace(l)
		case inStatic:
			inStatic = false
		}
	}
	if recipe == "" {
		t.Fatal("no static target in the Makefile")
	}
	ref := regexp.MustCompile(`\$\(([A-Z_]+)\)`)
	for range 3 { // variables hold variables
		recipe = ref.ReplaceAllStringFunc(recipe, func(s string) string { return vars[s[2:len(s)-1]] })
	}
	return recipe
}

var outputFlag = regexp.MustCompile(`-o \S+`)

// TestDockerfile checks the Dockerfile against STYLE.md and the Makefile:
// modules downloaded before the source is copied, the static build of
// `make static`, a distroless nonroot runtime, the ledger volume, the
// entrypoint, command and healthcheck.
func TestDockerfile(t *testing.T) {
	build, lines := dockerfileBuild(t)
	if got, want := outputFlag.ReplaceAllString(build, "-o OUT"), outputFlag.ReplaceAllString(makefileStatic(t), "-o OUT"); got != want {
		t.Errorf("the Dockerfile and `make static` build differently:\nDockerfile: %s\nMakefile:   %s", got, want)
	}
	for _, flag := range []string{"CGO_ENABLED=1 ", "-tags osusergo,netgo,sqlite_omit_load_extension ", `-ldflags "-s -w -extldflags '-static'`, " -trimpath "} {
		if !strings.Contains(build, flag) {
			t.Errorf("build command lacks %q: %s", flag, build)
		}
	}
	index := func(s string) int {
		for i, l := range lines {
			if strings.TrimSpace(l) == s {
				return i
			}
		}
		t.Errorf("the Dockerfile lacks the line %q", s)
		return -1
	}
	if d, c := index("RUN go mod download"), index("COPY . ."); d > c {
		t.Error("go mod download must come before the source is copied")
	}
	index("FROM gcr.io/distroless/static-debian12:nonroot")
	index("VOLUME /var/lib/registrywatch")
	index(`ENTRYPOINT ["/registrywatch"]`)
	index(`CMD ["run"]`)
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, "HEALTHCHECK ") && strings.HasSuffix(l, `CMD ["/registrywatch", "healthcheck"]`) {
			found = true
		}
	}
	if !found {
		t.Error(`no HEALTHCHECK ... CMD ["/registrywatch", "healthcheck"]`)
	}
}

// buildShipped runs the Dockerfile's build command here, into a temporary
// directory, with VERSION v0.0.0-dockertest, and returns the binary.
func buildShipped(t *testing.T) string {
	t.Helper()
	build, _ := dockerfileBuild(t)
	out := filepath.Join(t.TempDir(), "registrywatch")
	cmd := exec.Command("sh", "-c", outputFlag.ReplaceAllString(build, "-o "+out))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-dockertest")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	return out
}

// TestLongDockerBuild runs the Dockerfile's build command here (no Docker
// engine needed), into a temporary directory, and checks the binary is
// static and runs.
func TestLongDockerBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the static binary (minutes without a warm cache)")
	}
	out := buildShipped(t)
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links shared libraries %v", libs)
	}
	b, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(b), "registrywatch v0.0.0-dockertest (go") {
		t.Fatalf("version: %v\n%s", err, b)
	}
	t.Logf("static binary: %s", strings.TrimSpace(string(b)))
}
