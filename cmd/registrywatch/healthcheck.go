package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/registrywatch/registrywatch/internal/config"
)

// healthcheckCmd is `registrywatch healthcheck`.
type healthcheckCmd struct{}

func init() { register(healthcheckCmd{}) }

func (healthcheckCmd) Name() string     { return "healthcheck" }
func (healthcheckCmd) Synopsis() string { return "check a running daemon's /healthz" }

const healthcheckHelp = `
Gets the daemon's /healthz, for a container HEALTHCHECK (the runtime image has no
curl). The URL is -url, else http://<http.listen>/healthz of the config file
(-config or $REGISTRYWATCH_CONFIG, else ./registrywatch.yaml when it exists; a
wildcard address is reached on the loopback), else http://127.0.0.1:9090/healthz.

Exit status 0 when it answers 200 within 3 seconds, else 1.`

// healthcheckTimeout bounds the whole check.
const healthcheckTimeout = 3 * time.Second

func (healthcheckCmd) Run(ctx context.Context, env *Env, args []string) error {
	flags := newFlagSet(env, "healthcheck", "[-url URL] [-config FILE]", healthcheckHelp)
	url := flags.String("url", "", "the `URL` to get (default from the config's http.listen)")
	configFlag := flags.String("config", "", configFlagHelp)
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	target := *url
	if target == "" {
		listen, err := healthListen(env, *configFlag)
		if err != nil {
			return checkErr(err)
		}
		target = "http://" + loopback(listen) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usageErr(fmt.Errorf("-url: %w", err))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return checkErr(fmt.Errorf("unhealthy: %w", err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return checkErr(fmt.Errorf("unhealthy: %s answered %s", target, resp.Status))
	}
	fmt.Fprintf(env.Stdout, "healthy: %s\n", target)
	return nil
}

// healthListen returns http.listen of the config file, or the default when
// no config file is named and ./registrywatch.yaml does not exist.
func healthListen(env *Env, configFlag string) (string, error) {
	path := config.ResolvePath(configFlag, env.Getenv)
	if configFlag == "" && env.Getenv(config.EnvConfig) == "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return defaultListen, nil
		}
	}
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		return "", err
	}
	return cfg.HTTP.Listen, nil
}

const defaultListen = "127.0.0.1:9090"

// loopback turns a wildcard listen address into one a local client reaches.
func loopback(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
