package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/slatehq/slate/internal/dynserve"
	"github.com/slatehq/slate/internal/testenv"
)

// schedulesSet holds studio.schedules.v1.Schedules, a service slate has no
// generated code for (see testdata/generate.sh).
const schedulesSet = "testdata/schedules.pb"

// shootServer serves BatchGetShoots of studio.schedules.v1.Schedules from
// the shoots it holds, through internal/dynserve.
type shootServer struct {
	srv    *dynserve.Server
	calls  atomic.Int64
	mu     sync.Mutex
	shoots map[string]*dynamicpb.Message
}

// startShoots serves the schedules service on a loopback port, with server
// reflection when reflect is true.
func startShoots(t testing.TB, reflect bool) *shootServer {
	t.Helper()
	files, err := dynserve.ReadDescriptorSet(schedulesSet)
	if err != nil {
		t.Fatal(err)
	}
	s := &shootServer{shoots: map[string]*dynamicpb.Message{}}
	refl := dynserve.NoReflection
	if reflect {
		refl = dynserve.ReflectionV1
	}
	s.srv, err = dynserve.Start(files, map[string]dynserve.Handler{
		"studio.schedules.v1.Schedules/BatchGetShoots": s.batchGet,
	}, dynserve.WithReflection(refl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.srv.Stop)
	return s
}

// put stores a shoot given as protojson.
func (s *shootServer) put(t testing.TB, js string) {
	t.Helper()
	m, err := s.srv.NewMessage("studio.schedules.v1.Shoot")
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal([]byte(js), m); err != nil {
		t.Fatalf("shoot %s: %v", js, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shoots[m.Get(dynserve.Field(m, "id")).String()] = m
}

func (s *shootServer) batchGet(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
	s.calls.Add(1)
	resp, err := s.srv.NewMessage("studio.schedules.v1.BatchGetShootsResponse")
	if err != nil {
		return nil, err
	}
	ids := req.Get(dynserve.Field(req, "ids")).List()
	recs := resp.Mutable(dynserve.Field(resp, "shoots")).List()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ids.Len() {
		if m, ok := s.shoots[ids.Get(i).String()]; ok {
			recs.Append(protoreflect.ValueOfMessage(m))
		}
	}
	return resp, nil
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// slateProc is a slate command running in a child process.
type slateProc struct {
	name     string
	cmd      *exec.Cmd
	httpAddr string
	out      syncBuffer // stdout and stderr
	exited   chan struct{}
	err      error // of Wait, once exited is closed
}

// freeAddr returns a loopback host:port nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// startSlate runs `slate args... --http-addr <free port>` in a child
// process (this test binary, see TestMain); the child is killed at the end
// of the test if it still runs.
func startSlate(t testing.TB, name string, args ...string) *slateProc {
	t.Helper()
	addr := freeAddr(t)
	p := startProc(t, name, append(args, "--http-addr", addr, "--log-level", "info")...)
	p.httpAddr = addr
	return p
}

// startProc runs `slate args...` in a child process, killed at the end of
// the test if it still runs.
func startProc(t testing.TB, name string, args ...string) *slateProc {
	t.Helper()
	p := &slateProc{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), envRunMain+"=1")
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.out.String())
		}
	})
	return p
}

func (p *slateProc) running(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("%s exited (%v):\n%s", p.name, p.err, p.out.String())
	default:
	}
}

// waitReady waits until /healthz answers 200 and the command said its
// pipelines run.
func (p *slateProc) waitReady(t testing.TB, kind string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, p.name+" /healthz", func() bool {
		p.running(t)
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	p.waitOutput(t, "slate "+kind+" is running", 30*time.Second)
}

// waitOutput waits until the child wrote s.
func (p *slateProc) waitOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("%s to say %q", p.name, s), func() bool {
		if strings.Contains(p.out.String(), s) {
			return true
		}
		p.running(t)
		return false
	})
}

// stop sends SIGTERM and waits for the child to exit 0.
func (p *slateProc) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM:\n%s", p.name, p.out.String())
	}
	if p.err != nil {
		t.Fatalf("%s exited with %v after SIGTERM, want 0:\n%s", p.name, p.err, p.out.String())
	}
}

// kill sends SIGKILL and waits for the child to be gone.
func (p *slateProc) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// record is one Kafka record of a topic, with its envelope.
// writeFile writes a file of the test's temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
