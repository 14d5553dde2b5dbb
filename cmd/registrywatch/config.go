package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/registrywatch/registrywatch/internal/config"
	"go.yaml.in/yaml/v3"
)

// configCmd is `registrywatch config check`.
type configCmd struct{}

func init() { register(configCmd{}) }

func (configCmd) Name() string     { return "config" }
func (configCmd) Synopsis() string { return "check a config file and print it resolved" }

const configCheckHelp = `
Loads the config file (-config, else $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml),
validates it, and prints it resolved as YAML on stdout: defaults filled in, ${VAR}
expanded, relative paths made absolute, secrets shown as <secret>. The first lines
give the file and the digest that a config.applied ledger entry records for it;
"config OK" goes to stderr.

Every problem is reported as file:line: field: message. Exit status 2 if the config
is not valid.`

func (configCmd) Run(ctx context.Context, env *Env, args []string) error {
	usage := func() {
		fmt.Fprintf(env.Stderr, "Usage: registrywatch config check [-config FILE]\n%s\n", configCheckHelp)
	}
	if len(args) == 0 {
		usage()
		return usageErrf("config needs a subcommand: check")
	}
	switch args[0] {
	case "check":
		return configCheck(env, args[1:])
	case "-h", "-help", "--help", "help":
		usage()
		return flag.ErrHelp
	default:
		return usageErrf("unknown config subcommand %q (want check)", args[0])
	}
}

func configCheck(env *Env, args []string) error {
	fs := newFlagSet(env, "config check", "[-config FILE]", configCheckHelp)
	configFlag := fs.String("config", "", "config `file` (default $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := config.ResolvePath(*configFlag, env.Getenv)
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return usageErr(fmt.Errorf("%s is not valid:\n%w", path, err))
		}
		return usageErr(err)
	}
	fmt.Fprintf(env.Stdout, "# config %s\n# digest %s\n", cfg.Path, cfg.Digest())
	enc := yaml.NewEncoder(env.Stdout)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	fmt.Fprintf(env.Stderr, "config OK: %s\n", cfg.Path)
	return nil
}
