package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release version, set at build time with
// -ldflags "-X main.version=v1.2.3". Empty means: take it from the build info.
var version = ""

// versionCmd is `registrywatch version`.
type versionCmd struct{}

func init() { register(versionCmd{}) }

func (versionCmd) Name() string     { return "version" }
func (versionCmd) Synopsis() string { return "print the version" }

func (versionCmd) Run(_ context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "version", "", "Prints the registrywatch version and the Go version it was built with.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "registrywatch %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// versionString is the version set at build time, else the module version
// from the build info (with the VCS revision when known), else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	v := "devel"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "+" + rev + modified
	}
	return v
}
