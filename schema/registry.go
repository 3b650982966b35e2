package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
)

// Registry is what a [Codec] needs from a schema registry. [RegistryClient]
// implements it over the Confluent REST API.
type Registry interface {
	// Register registers schema under subject (or finds it registered) and
	// returns its global id.
	Register(ctx context.Context, subject, schema string) (int, error)
	// SchemaByID returns the schema with the given global id.
	SchemaByID(ctx context.Context, id int) (avro.Schema, error)
}

// RegistryClient is a Confluent Schema Registry client with an id cache in
// both directions: a schema is registered once per subject per process, and
// fetched once per id. It is safe for concurrent use.
type RegistryClient struct {
	c   *registry.Client
	mu  sync.Mutex
	ids map[[2]string]int
}

// NewRegistryClient returns a client of the registry at url (for example
// http://127.0.0.1:8081).
func NewRegistryClient(url string, opts ...registry.ClientFunc) (*RegistryClient, error) {
	c, err := registry.NewClient(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("schema: registry client: %w", err)
	}
	return &RegistryClient{c: c, ids: make(map[[2]string]int)}, nil
}

// Client returns the underlying hamba/avro registry client.
func (r *RegistryClient) Client() *registry.Client { return r.c }

// Register implements [Registry].
func (r *RegistryClient) Register(ctx context.Context, subject, schema string) (int, error) {
	key := [2]string{subject, schema}
	r.mu.Lock()
	id, ok := r.ids[key]
	r.mu.Unlock()
	if ok {
		return id, nil
	}
	id, _, err := r.c.CreateSchema(ctx, subject, schema)
	if err != nil {
		return 0, fmt.Errorf("schema: register subject %q: %w", subject, err)
	}
	r.mu.Lock()
	r.ids[key] = id
	r.mu.Unlock()
	return id, nil
}

// SchemaByID implements [Registry]; the underlying client caches by id.
// hamba/avro's parser panics on some malformed schemas (an empty union with
// a default, for one), which a registry other than slate's may serve: such
// a schema fails wrapping [ErrDecode], since no retry will parse it.
func (r *RegistryClient) SchemaByID(ctx context.Context, id int) (s avro.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("%w: schema id %d from the registry: the Avro parser failed on it: %v", ErrDecode, id, p)
		}
	}()
	s, err = r.c.GetSchema(ctx, id)
	switch {
	case err == nil:
		return s, nil
	case unparsable(err):
		return nil, fmt.Errorf("%w: schema id %d from the registry does not parse: %w", ErrDecode, id, err)
	}
	return nil, fmt.Errorf("schema: get schema id %d: %w", id, err)
}

// unparsable reports whether an error of the registry client's GetSchema is
// the Avro parser refusing the schema the registry served, as opposed to
// the request failing (an HTTP error, the network, the context, a body that
// is not the registry's JSON), which a retry may cure.
func unparsable(err error) bool {
	var re registry.Error
	var ue *url.Error
	var ne net.Error
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &re), errors.As(err, &ue), errors.As(err, &ne), errors.As(err, &se), errors.As(err, &te),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return false
	}
	return true
}
