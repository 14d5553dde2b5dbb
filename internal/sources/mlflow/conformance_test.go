package mlflow

import (
	"testing"
	"time"

	"github.com/registrywatch/registrywatch/internal/clock"
	"github.com/registrywatch/registrywatch/internal/config"
	"github.com/registrywatch/registrywatch/internal/sources"
	"github.com/registrywatch/registrywatch/internal/sources/conformance"
	"github.com/registrywatch/registrywatch/internal/sources/mlflow/mlflowfake"
)

// fakeRegistry adapts mlflowfake to the conformance suite.
type fakeRegistry struct {
	s   *mlflowfake.Server
	clk *clock.Fake
}

func (r fakeRegistry) CreateModel(name string) error {
	r.clk.Advance(time.Millisecond)
	return r.s.CreateModel(name, mlflowfake.ModelSpec{})
}

func (r fakeRegistry) CreateVersion(model string) (string, error) {
	r.clk.Advance(time.Millisecond)
	return r.s.CreateVersion(model, mlflowfake.VersionSpec{Source: "s3://bucket/" + model})
}

func (r fakeRegistry) DeleteVersion(model, v string) error { return r.s.DeleteVersion(model, v) }
func (r fakeRegistry) DeleteModel(name string) error       { return r.s.DeleteModel(name) }
func (r fakeRegistry) SetModelTag(model, k, v string) error {
	return r.s.SetModelTag(model, k, v)
}
func (r fakeRegistry) SetVersionTag(model, version, k, v string) error {
	return r.s.SetVersionTag(model, version, k, v)
}
func (r fakeRegistry) Fail(status int) func() { return r.s.Inject(mlflowfake.Fault{Status: status}) }
func (r fakeRegistry) Hang() func()           { return r.s.Inject(mlflowfake.Fault{Delay: 1000 * time.Hour}) }
func (r fakeRegistry) Held() int              { return r.s.Delaying() }

func harness(typ string) conformance.Harness {
	return conformance.Harness{New: func(t *testing.T) conformance.Instance {
		clk := clock.NewFake(time.UnixMilli(start))
		fake := mlflowfake.New(mlflowfake.Options{Clock: clk, Databricks: typ == sources.TypeDatabricks})
		srv := fake.Start()
		t.Cleanup(srv.Close)
		c, err := New(config.Source{Name: "conformance-" + typ, Type: typ, URL: srv.URL, Timeout: config.Duration(time.Hour)},
			Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return conformance.Instance{Source: c, Registry: fakeRegistry{fake, clk}, Clock: clk}
	}}
}

func TestConformanceMLflow(t *testing.T)     { conformance.Run(t, harness(sources.TypeMLflow)) }
func TestConformanceDatabricks(t *testing.T) { conformance.Run(t, harness(sources.TypeDatabricks)) }
