package cdctest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// Environment of a sidecar child process (see [Sidecars]).
const (
	envChild    = "SLATE_CDC_SIDECAR_CHILD"
	envBrokers  = "SLATE_CDC_SIDECAR_BROKERS"
	envRegistry = "SLATE_CDC_SIDECAR_REGISTRY"
	envName     = "SLATE_CDC_SIDECAR_NAME"
	envTable    = "SLATE_CDC_SIDECAR_TABLE"
)

// RunSidecar is the body of the test that [Sidecars] runs as a child
// process: it builds a source with newSource, from the name and table the
// parent passed, and runs it with a [cdc.Runner] publishing to the
// parent's broker until the process is killed. Run on its own, it skips.
func RunSidecar(t *testing.T, source string, newSource func(reg schema.Registry, name, table string) (cdc.Source, error)) {
	if os.Getenv(envChild) != "1" {
		t.Skip("runs only as a sidecar child process of a SIGKILL test")
	}
	reg, err := schema.NewRegistryClient(os.Getenv(envRegistry))
	if err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(producer.WithBrokers(os.Getenv(envBrokers)), producer.WithRegistry(reg), producer.WithSource(source))
	if err != nil {
		t.Fatal(err)
	}
	src, err := newSource(reg, os.Getenv(envName), os.Getenv(envTable))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cdc.NewRunner(p)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("cdc child running")
	if err := r.Run(context.Background(), src); err != nil { // runs until killed
		t.Fatal(err)
	}
}

// Sidecars starts the test binary as CDC sidecar processes, each running
// the test childTest (which calls [RunSidecar]), and kills them. When the
// test fails, their output is logged.
type Sidecars struct {
	t     *testing.T
	run   string
	env   []string
	procs []*exec.Cmd
	logs  []*bytes.Buffer
}

// NewSidecars prepares sidecars that publish to brokers, register schemas
// at registryURL, and capture table under the source name name.
func NewSidecars(t *testing.T, childTest, brokers, registryURL, name, table string) *Sidecars {
	s := &Sidecars{t: t, run: "-test.run=^" + childTest + "$",
		env: append(os.Environ(), envChild+"=1", envBrokers+"="+brokers, envRegistry+"="+registryURL,
			envName+"="+name, envTable+"="+table)}
	t.Cleanup(func() {
		for _, c := range s.procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if t.Failed() {
			for i, l := range s.logs {
				t.Logf("child %d output:\n%s", i, l.String())
			}
		}
	})
	return s
}

// Start starts one more sidecar.
func (s *Sidecars) Start() {
	s.t.Helper()
	cmd := exec.Command(os.Args[0], s.run, "-test.v")
	cmd.Env = s.env
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.procs = append(s.procs, cmd)
	s.logs = append(s.logs, out)
}

// Kill SIGKILLs the newest sidecar and waits until it is gone.
func (s *Sidecars) Kill() {
	s.t.Helper()
	c := s.procs[len(s.procs)-1]
	if err := c.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	_ = c.Wait()
}
