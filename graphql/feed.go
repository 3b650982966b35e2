package graphql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/schema"
)

// Feed is where a [Server]'s subscriptions get the views' changes.
type Feed interface {
	// Run publishes the views' changes to hub until ctx ends (then it
	// returns nil) or it cannot go on. It calls hub.Live once every
	// change written from then on will reach hub.
	Run(ctx context.Context, hub *Hub) error
}

// KafkaFeedConfig says which topics a [KafkaFeed] reads and how.
type KafkaFeedConfig struct {
	// Topics are the materialized topics of the views (for example
	// studio.title.materialized and studio.cashflow.materialized); each
	// record is a Confluent-framed Avro envelope whose entity type names
	// its view. Required.
	Topics []string
	// Registry holds the writer schemas of the envelopes and their data.
	// Required.
	Registry schema.Registry
	// Client are the franz-go options that reach the cluster: the seed
	// brokers, TLS, SASL (kafkaconf.Client.FranzOptions makes them).
	// Required.
	Client []kgo.Opt
	// Groups are the consumer groups of the pipelines that fill the
	// subscriptions' stores (the sink pipelines). The feed starts each
	// partition at the lowest offset they committed, or at its end where
	// none did, so a record a store has not applied yet still reaches the
	// subscribers. Without groups it starts at the ends.
	Groups []string
	// Log reports records that cannot be decoded and fetch errors; nil
	// discards.
	Log *slog.Logger
}

// KafkaFeed reads the views' materialized topics with one Kafka client
// and no consumer group of its own: it starts at the end of every
// partition that the topics have when it starts, or where the stores'
// pipelines are ([KafkaFeedConfig.Groups]), and reads committed records
// only (so a transactional
// enricher's aborted records never reach a subscriber) and publishes each
// record to the hub as the view at the record's version. DELETE records
// publish deleted changes; TRUNCATE records and records it cannot decode
// are skipped (and logged). Partitions added to the topics later are not
// read until the feed restarts.
//
// A subscription starts from its store's view, then takes the feed's
// newer changes. Without Groups, a record written before the feed
// started that the store had not applied yet when the subscription
// started (a sink catching up right after a restart) reaches that
// subscriber only with the next change of its document; with them, the
// feed reads from where the sinks are, and what the subscriber has seen
// already is skipped by version.
type KafkaFeed struct {
	cfg   KafkaFeedConfig
	codec *schema.Codec
}

var _ Feed = (*KafkaFeed)(nil)

// NewKafkaFeed returns a feed of cfg's topics; errors wrap [ErrConfig].
func NewKafkaFeed(cfg KafkaFeedConfig) (*KafkaFeed, error) {
	switch {
	case len(cfg.Topics) == 0:
		return nil, fmt.Errorf("%w: kafka feed: no topics", ErrConfig)
	case cfg.Registry == nil:
		return nil, fmt.Errorf("%w: kafka feed: no registry", ErrConfig)
	case len(cfg.Client) == 0:
		return nil, fmt.Errorf("%w: kafka feed: no client options (at least kgo.SeedBrokers)", ErrConfig)
	}
	for _, t := range cfg.Topics {
		if t == "" {
			return nil, fmt.Errorf("%w: kafka feed: an empty topic name in %q", ErrConfig, cfg.Topics)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	codec, err := schema.NewCodec(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("graphql: kafka feed: %w", err)
	}
	cfg.Topics = slices.Clone(cfg.Topics)
	return &KafkaFeed{cfg: cfg, codec: codec}, nil
}

// feedRetry is how long the feed waits before it asks again for topics
// that do not exist yet.
const feedRetry = 500 * time.Millisecond

// Run implements [Feed].
func (f *KafkaFeed) Run(ctx context.Context, hub *Hub) error {
	start, err := f.ends(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cl, err := kgo.NewClient(append(slices.Clone(f.cfg.Client), kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(time.Second))...)
	if err != nil {
		return fmt.Errorf("graphql: kafka feed: %w", err)
	}
	defer cl.Close()
	hub.Live()
	f.cfg.Log.Info("graphql change feed live", "topics", f.cfg.Topics)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				f.cfg.Log.Warn("graphql change feed: fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			c, ok, err := f.change(ctx, r)
			if err != nil {
				f.cfg.Log.Warn("graphql change feed: record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			if ok {
				hub.Publish(c)
			}
		})
	}
}

// ends returns the end offset of every partition of the feed's topics,
// asking again until all of them exist.
func (f *KafkaFeed) ends(ctx context.Context) (map[string]map[int32]kgo.Offset, error) {
	cl, err := kgo.NewClient(f.cfg.Client...)
	if err != nil {
		return nil, fmt.Errorf("graphql: kafka feed: %w", err)
	}
	defer cl.Close()
	for {
		out, missing, err := f.endOffsets(ctx, cl)
		if err == nil && missing == "" {
			return out, nil
		}
		if err != nil {
			f.cfg.Log.Warn("graphql change feed: end offsets", "err", err)
		} else {
			f.cfg.Log.Info("graphql change feed: waiting for a topic", "topic", missing)
		}
		t := time.NewTimer(feedRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// endOffsets asks once; missing names a topic or partition that has no
// end offset yet.
func (f *KafkaFeed) endOffsets(ctx context.Context, cl *kgo.Client) (map[string]map[int32]kgo.Offset, string, error) {
	md := kmsg.NewPtrMetadataRequest()
	for _, t := range f.cfg.Topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		md.Topics = append(md.Topics, rt)
	}
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		return nil, "", fmt.Errorf("metadata: %w", err)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.IsolationLevel = 1 // read committed: the last stable offset
	for _, t := range mresp.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil || len(t.Partitions) == 0 {
			return nil, name, nil
		}
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = name
		for _, p := range t.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = p.Partition
			lp.Timestamp = -1 // the end
			lt.Partitions = append(lt.Partitions, lp)
		}
		lo.Topics = append(lo.Topics, lt)
	}
	lresp, err := lo.RequestWith(ctx, cl)
	if err != nil {
		return nil, "", fmt.Errorf("list offsets: %w", err)
	}
	out := map[string]map[int32]kgo.Offset{}
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Sprintf("%s/%d (%v)", t.Topic, p.Partition, err), nil
			}
			if out[t.Topic] == nil {
				out[t.Topic] = map[int32]kgo.Offset{}
			}
			out[t.Topic][p.Partition] = kgo.NewOffset().At(p.Offset)
		}
	}
	for _, t := range f.cfg.Topics {
		if len(out[t]) == 0 {
			return nil, t, nil
		}
	}
	for _, g := range f.cfg.Groups {
		if err := f.committed(ctx, cl, g, out); err != nil {
			return nil, "", err
		}
	}
	return out, "", nil
}

// committed lowers the start offsets in out to those group committed.
func (f *KafkaFeed) committed(ctx context.Context, cl *kgo.Client, group string, out map[string]map[int32]kgo.Offset) error {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	for topic, ps := range out {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = topic
		for p := range ps {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("offsets of group %s: %w", group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
		return nil // a group that never committed: the ends stand
	} else if err != nil {
		return fmt.Errorf("offsets of group %s: %w", group, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("offsets of group %s, %s/%d: %w", group, t.Topic, p.Partition, err)
			}
			end, ok := out[t.Topic][p.Partition]
			if ok && p.Offset >= 0 && p.Offset < end.EpochOffset().Offset {
				out[t.Topic][p.Partition] = kgo.NewOffset().At(p.Offset)
			}
		}
	}
	return nil
}

// change decodes a record into the change it is; ok is false for records
// that change no document (TRUNCATE, Kafka tombstones).
func (f *KafkaFeed) change(ctx context.Context, r *kgo.Record) (Change, bool, error) {
	if len(r.Value) == 0 {
		return Change{}, false, nil
	}
	env, err := f.codec.Decode(ctx, r.Value)
	if err != nil {
		return Change{}, false, err
	}
	c := Change{View: env.EntityType, ID: env.Subject, Version: env.Sequence, Produced: r.Timestamp}
	switch env.Type {
	case schema.OpDelete:
		c.Deleted = true
		return c, true, nil
	case schema.OpCreate, schema.OpUpdate, schema.OpSnapshot:
	default:
		return Change{}, false, nil
	}
	ev := sink.Event{Envelope: env, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	doc, err := sink.Document(ctx, f.cfg.Registry, &ev, bleve.EnvelopeField)
	if err != nil {
		return Change{}, false, err
	}
	// The document as a Store returns it: plain JSON values.
	b, err := json.Marshal(doc)
	if err != nil {
		return Change{}, false, fmt.Errorf("event %s: %w", env.ID, err)
	}
	c.Doc = map[string]any{}
	if err := json.Unmarshal(b, &c.Doc); err != nil {
		return Change{}, false, fmt.Errorf("event %s: %w", env.ID, err)
	}
	return c, true, nil
}
