package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/registrywatch/registrywatch/internal/config"
)

const kubeDir = repoRoot + "/configs/kubernetes"

// kubeObjects reads every document of every YAML file of the example.
func kubeObjects(t *testing.T) (objs []map[string]any, files map[string]bool) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	files = map[string]bool{}
	for _, p := range paths {
		files[filepath.Base(p)] = true
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m map[string]any
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			m["_file"] = filepath.Base(p)
			objs = append(objs, m)
		}
	}
	return objs, files
}

// dig walks maps by key and lists by "name" (or an index).
func dig(v any, path ...string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var next any
			if i, err := strconv.Atoi(k); err == nil && i < len(x) {
				next = x[i]
			}
			for _, e := range x {
				if m, ok := e.(map[string]any); ok && m["name"] == k {
					next = m
				}
			}
			v = next
		default:
			return nil
		}
	}
	return v
}

func find(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		if o["kind"] == kind && dig(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

// TestKubernetesExample checks the sidecar example against DESIGN.md section
// 8: one replica, Recreate, liveness on /healthz only and no readiness gate
// from registrywatch, the ledger on a PersistentVolumeClaim, secrets from a
// Secret, the signing key from a Secret volume, and a config (from a
// ConfigMap) that loads and points at those mounts and at the MLflow
// container.
func TestKubernetesExample(t *testing.T) {
	objs, files := kubeObjects(t)
	var kust map[string]any
	for _, o := range objs {
		if o["kind"] == "Kustomization" {
			kust = o
		}
	}
	if kust == nil {
		t.Fatal("no kustomization.yaml")
	}
	for _, r := range dig(kust, "resources").([]any) {
		if !files[r.(string)] {
			t.Errorf("kustomization lists missing %s", r)
		}
	}
	if slices.Contains(dig(kust, "resources").([]any), any("secret.example.yaml")) {
		t.Error("the example secrets must not be applied")
	}

	dep := find(objs, "Deployment", "mlflow")
	if dep == nil {
		t.Fatal("no Deployment mlflow")
	}
	if dig(dep, "spec", "replicas") != 1 || dig(dep, "spec", "strategy", "type") != "Recreate" {
		t.Errorf("want one replica, Recreate: %v %v", dig(dep, "spec", "replicas"), dig(dep, "spec", "strategy"))
	}
	pod := dig(dep, "spec", "template", "spec")
	rw := dig(pod, "containers", "registrywatch")
	if rw == nil || dig(pod, "containers", "mlflow") == nil {
		t.Fatal("want containers mlflow and registrywatch")
	}
	if dig(rw, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Error("registrywatch's liveness probe must be /healthz")
	}
	for _, p := range []string{"readinessProbe", "startupProbe"} {
		if dig(rw, p) != nil {
			t.Errorf("registrywatch must not have a %s: the registry's readiness must not depend on it", p)
		}
	}
	for _, env := range []string{"SLACK_WEBHOOK_URL", "MLFLOW_TOKEN", "REGISTRYWATCH_PASSPHRASE"} {
		if dig(envVar(rw, env), "valueFrom", "secretKeyRef", "name") != "registrywatch-secrets" {
			t.Errorf("%s must come from the registrywatch-secrets Secret", env)
		}
	}
	mount := func(vol string) string {
		for _, m := range dig(rw, "volumeMounts").([]any) {
			if dig(m, "name") == vol {
				return dig(m, "mountPath").(string)
			}
		}
		t.Fatalf("registrywatch does not mount %s", vol)
		return ""
	}
	if dig(pod, "volumes", "ledger", "persistentVolumeClaim", "claimName") != "registrywatch-ledger" || find(objs, "PersistentVolumeClaim", "registrywatch-ledger") == nil {
		t.Error("the ledger must be on the registrywatch-ledger PersistentVolumeClaim")
	}
	if dig(pod, "volumes", "signing-key", "secret", "secretName") != "registrywatch-signing-key" {
		t.Error("the signing key must come from a Secret volume")
	}
	cmName := dig(pod, "volumes", "config", "configMap", "name")
	cm := find(objs, "ConfigMap", cmName.(string))
	if cm == nil {
		t.Fatalf("no ConfigMap %v", cmName)
	}

	// The config loads with the secrets in the environment, and its paths
	// and addresses match the pod.
	env := map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x", "MLFLOW_TOKEN": "token"}
	cfgPath := dig(envVar(rw, "REGISTRYWATCH_CONFIG"), "value").(string)
	if filepath.Dir(cfgPath) != mount("config") {
		t.Errorf("REGISTRYWATCH_CONFIG %s is not in the config mount %s", cfgPath, mount("config"))
	}
	data := dig(cm, "data", filepath.Base(cfgPath)).(string)
	cfg, err := config.Parse([]byte(data), cfgPath, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the ConfigMap's config does not load: %v", err)
	}
	if filepath.Dir(cfg.Ledger.Path) != mount("ledger") || filepath.Dir(cfg.Ledger.Signer) != mount("signing-key") {
		t.Errorf("ledger %s and signer %s must be on the ledger and key mounts", cfg.Ledger.Path, cfg.Ledger.Signer)
	}
	if _, port, _ := net.SplitHostPort(cfg.HTTP.Listen); dig(rw, "livenessProbe", "httpGet", "port") != "metrics" ||
		strconv.Itoa(dig(rw, "ports", "metrics", "containerPort").(int)) != port || !strings.HasPrefix(cfg.HTTP.Listen, "0.0.0.0:") {
		t.Errorf("http.listen %s must be reachable by the kubelet on the probed port", cfg.HTTP.Listen)
	}
	mlflowPort := strconv.Itoa(dig(pod, "containers", "mlflow", "ports", "http", "containerPort").(int))
	if len(cfg.Sources) != 1 || cfg.Sources[0].URL != "http://127.0.0.1:"+mlflowPort || cfg.Sources[0].Token.Reveal() != "token" {
		t.Errorf("the source must be the MLflow container of the pod: %+v", cfg.Sources)
	}
}

// envVar returns the container's env entry named name.
func envVar(container any, name string) any {
	for _, e := range dig(container, "env").([]any) {
		if dig(e, "name") == name {
			return e
		}
	}
	return nil
}
