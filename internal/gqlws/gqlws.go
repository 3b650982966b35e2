// Package gqlws is a small GraphQL over WebSocket client of the
// graphql-transport-ws protocol
// (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md), for
// the tests and benchmarks of slate's subscriptions: it dials, sends
// connection_init, waits for connection_ack, starts subscriptions and
// reads their messages, answering the server's pings.
package gqlws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// Protocol is the subprotocol the client asks for.
const Protocol = "graphql-transport-ws"

// Message is one message of the protocol.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Result is the payload of a next message.
type Result struct {
	Data   map[string]any   `json:"data"`
	Errors []map[string]any `json:"errors"`
}

// Conn is one connection; its methods are not safe for concurrent use.
type Conn struct {
	c *websocket.Conn
}

// Dial connects to url (http:// or ws://, the server's /query) and
// completes the connection_init handshake.
func Dial(ctx context.Context, url string, client *http.Client) (*Conn, error) {
	url = strings.Replace(strings.Replace(url, "https://", "wss://", 1), "http://", "ws://", 1)
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{Protocol}, HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("gqlws: dial %s: %w", url, err)
	}
	c.SetReadLimit(16 << 20)
	if c.Subprotocol() != Protocol {
		_ = c.CloseNow()
		return nil, fmt.Errorf("gqlws: the server chose subprotocol %q, not %s", c.Subprotocol(), Protocol)
	}
	w := &Conn{c: c}
	if err := w.send(ctx, Message{Type: "connection_init"}); err != nil {
		_ = c.CloseNow()
		return nil, err
	}
	m, err := w.Read(ctx)
	if err != nil {
		_ = c.CloseNow()
		return nil, err
	}
	if m.Type != "connection_ack" {
		_ = c.CloseNow()
		return nil, fmt.Errorf("gqlws: got %s %s, want connection_ack", m.Type, m.Payload)
	}
	return w, nil
}

// Subscribe starts the operation query (with vars) as subscription id.
func (w *Conn) Subscribe(ctx context.Context, id, query string, vars map[string]any) error {
	p, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	return w.send(ctx, Message{ID: id, Type: "subscribe", Payload: p})
}

// Complete stops subscription id.
func (w *Conn) Complete(ctx context.Context, id string) error {
	return w.send(ctx, Message{ID: id, Type: "complete"})
}

// Read returns the next message other than ping and pong (pings are
// answered).
func (w *Conn) Read(ctx context.Context) (Message, error) {
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return Message{}, fmt.Errorf("gqlws: read: %w", err)
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			return Message{}, fmt.Errorf("gqlws: message %q: %w", b, err)
		}
		switch m.Type {
		case "ping":
			if err := w.send(ctx, Message{Type: "pong"}); err != nil {
				return Message{}, err
			}
		case "pong":
		default:
			return m, nil
		}
	}
}

// ErrEnded is wrapped by [Conn.Next] when the subscription ended with an
// error message (its text holds the errors) or completed.
var ErrEnded = errors.New("gqlws: subscription ended")

// Next returns the result of the next next message; an error or complete
// message is an error wrapping [ErrEnded].
func (w *Conn) Next(ctx context.Context) (Result, error) {
	m, err := w.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	switch m.Type {
	case "next":
		var r Result
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			return Result{}, fmt.Errorf("gqlws: next %s: %w", m.Payload, err)
		}
		return r, nil
	case "error":
		return Result{}, fmt.Errorf("%w with errors %s", ErrEnded, m.Payload)
	case "complete":
		return Result{}, fmt.Errorf("%w: complete", ErrEnded)
	}
	return Result{}, fmt.Errorf("gqlws: unexpected %s message %s", m.Type, m.Payload)
}

// Close closes the connection.
func (w *Conn) Close() error { return w.c.Close(websocket.StatusNormalClosure, "") }

func (w *Conn) send(ctx context.Context, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("gqlws: write %s: %w", m.Type, err)
	}
	return nil
}
