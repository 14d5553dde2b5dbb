// Command registrywatch keeps a signed, tamper-evident ledger of every change
// to ML model registries (MLflow, Databricks, SageMaker, Weights & Biases),
// alerts on production promotions that skipped approval and on slow rollbacks,
// and exports evidence an auditor can verify offline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes (DESIGN.md section 8).
const (
	exitOK    = 0
	exitCheck = 1 // a check failed: verify mismatch, a source failed to poll
	exitUsage = 2 // usage, config or lock error
)

// command is one subcommand. Each lives in its own file and registers itself
// from an init function.
type command interface {
	// Name is the word on the command line.
	Name() string
	// Synopsis is the one-line summary shown by "registrywatch help".
	Synopsis() string
	// Run executes the command with its arguments (after the name).
	Run(ctx context.Context, env *Env, args []string) error
}

// Env is what a command may touch of the process: streams and environment.
// Tests build their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

var commands = map[string]command{}

func register(c command) { commands[c.Name()] = c }

// exitError carries an exit code through a command's returned error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage, config or lock error (exit 2).
func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

// checkErr marks err as a failed check (exit 1).
func checkErr(err error) error { return &exitError{code: exitCheck, err: err} }

// usageErrf formats a usage error.
func usageErrf(format string, a ...any) error { return usageErr(fmt.Errorf(format, a...)) }

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	// The first SIGINT or SIGTERM cancels ctx (run shuts down gracefully);
	// a second one exits at once.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel()
		sig := <-signals
		fmt.Fprintf(os.Stderr, "registrywatch: second %s: exiting now\n", sig)
		os.Exit(exitUsage)
	}()
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := run(ctx, env, os.Args[1:])
	cancel()
	os.Exit(code)
}

// run dispatches to a subcommand and turns its error into an exit code.
func run(ctx context.Context, env *Env, args []string) int {
	commands := allCommands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return run(ctx, env, []string{c.Name(), "-h"})
			}
		}
		printUsage(env.Stderr, commands)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "registrywatch: unknown command %q\n\n", args[0])
		printUsage(env.Stderr, commands)
		return exitUsage
	}
	err := c.Run(ctx, env, args[1:])
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "registrywatch %s: %v\n", c.Name(), err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitCheck
}

func printUsage(w io.Writer, commands map[string]command) {
	fmt.Fprintln(w, "registrywatch: a signed, tamper-evident audit ledger for ML model registries")
	fmt.Fprintln(w, "\nUsage: registrywatch <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].Synopsis())
	}
	fmt.Fprintln(w, "\nRun 'registrywatch <command> -h' for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 a check failed, 2 usage, config or lock error.")
}

// newFlagSet returns a flag set that prints usage to env.Stderr and returns
// errors instead of exiting. usage is the text after "Usage:".
func newFlagSet(env *Env, name, usage, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: registrywatch %s %s\n\n%s\n", name, usage, strings.TrimSpace(help))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(env.Stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args, turning a parse failure into a usage error and
// refusing stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErrf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
