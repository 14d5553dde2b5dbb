package main

import (
	"context"
	"fmt"
)

// pendingCommand is a command whose capability is not built yet: it says so and
// exits 2 rather than pretend.
type pendingCommand struct{ name, synopsis string }

func (p pendingCommand) Name() string     { return p.name }
func (p pendingCommand) Synopsis() string { return p.synopsis + " (not available yet)" }
func (p pendingCommand) Run(context.Context, *Env, []string) error {
	return usageErr(fmt.Errorf("%s is not available yet in this version", p.name))
}

// pending lists the commands not built yet. Remove a command from here when
// its file registers the real one.
var pending = []pendingCommand{}

// allCommands returns the registered commands plus the pending ones.
func allCommands() map[string]command {
	all := make(map[string]command, len(commands)+len(pending))
	for _, p := range pending {
		all[p.name] = p
	}
	for n, c := range commands {
		all[n] = c
	}
	return all
}
