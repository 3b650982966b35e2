package enricher_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// topicLog records the topic of every publish.
type topicLog struct {
	mu     sync.Mutex
	topics []string
}

func (l *topicLog) Publish(_ context.Context, topic string, envs ...schema.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range envs {
		l.topics = append(l.topics, topic)
	}
	return nil
}

func TestTopicPrefix(t *testing.T) {
	reg := newRegistry(t)
	store := &titles{byID: map[string]title{"t-1": {ID: "t-1", ReleaseDate: "2027-07-01", Version: 1}}}
	tests := []struct {
		name string
		opts []enricher.Option
		want string
	}{
		{"default", nil, "studio.title.materialized"},
		{"prefix", []enricher.Option{enricher.WithTopicPrefix("acme.")}, "acme.title.materialized"},
		{"output topic wins", []enricher.Option{enricher.WithTopicPrefix("acme."), enricher.WithOutputTopic("titles")}, "titles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &topicLog{}
			e, err := enricher.New("title", store.resolver(), pub, reg, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if e.Topic() != tt.want {
				t.Errorf("Topic() = %q, want %q", e.Topic(), tt.want)
			}
			ev := change("title", "t-1", schema.OpUpdate, 1, 0)
			ev.Topic = schema.ChangesTopicIn("acme.", "title")
			if err := e.Handle(context.Background(), []sink.Event{ev}); err != nil {
				t.Fatal(err)
			}
			if len(pub.topics) != 1 || pub.topics[0] != tt.want {
				t.Errorf("published to %v, want [%s]", pub.topics, tt.want)
			}
		})
	}
	_, err := enricher.New("title", store.resolver(), &topicLog{}, reg, enricher.WithTopicPrefix("acme:"))
	if !errors.Is(err, enricher.ErrConfig) || !strings.Contains(err.Error(), `WithTopicPrefix: schema: invalid topic prefix: "acme:"`) {
		t.Fatalf("bad prefix: err = %v, want ErrConfig naming WithTopicPrefix", err)
	}
}
