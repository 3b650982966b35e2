package postgres

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// Config is what a Source reads and how. The zero value plus a DSN works
// against an existing slot "slate" and publication "slate"; set
// CreateSlot and CreatePublication to have the source make them.
type Config struct {
	// DSN is a libpq connection string or URL of the database to capture.
	// The source adds replication=database for its replication connection.
	DSN string `yaml:"dsn"`
	// Slot is the logical replication slot (default "slate").
	Slot string `yaml:"slot"`
	// Publication is the publication streamed (default "slate").
	Publication string `yaml:"publication"`
	// CreateSlot creates the slot when it does not exist.
	CreateSlot bool `yaml:"create_slot"`
	// CreatePublication creates the publication when it does not exist:
	// FOR TABLE Tables, or FOR ALL TABLES when Tables is empty.
	CreatePublication bool `yaml:"create_publication"`
	// Tables are the schema.table names of a created publication.
	Tables []string `yaml:"tables"`
	// Snapshot reads every published table in the slot's exported
	// snapshot when the slot is created, as SNAPSHOT events, before
	// streaming. It needs StateTable to survive a crash mid-snapshot.
	Snapshot bool `yaml:"snapshot"`
	// StateTable is a table the source keeps per slot (snapshot done,
	// heartbeat) in the captured database (default "slate_cdc_state";
	// "-" disables it, and with it crash-safe snapshots and heartbeats).
	StateTable string `yaml:"state_table"`
	// StatusInterval is how often the source confirms its acknowledged
	// position to the server (default 10s).
	StatusInterval time.Duration `yaml:"status_interval"`
	// HeartbeatInterval, when positive, writes the state table at this
	// interval, so a slot on a database with no captured traffic still
	// moves forward and the server can recycle WAL.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// Outbox is the outbox table (default cdc.OutboxTable; "-" disables
	// routing, and the table is then captured like any other). A bare
	// name matches a table of that name in every schema, schema.table
	// only that one.
	Outbox string `yaml:"outbox"`
	// OutboxDelete deletes outbox rows once Kafka acknowledged them, from
	// the table each was read from.
	OutboxDelete bool `yaml:"outbox_delete"`
	// TopicPrefix prefixes the topics events go to:
	// <prefix>cdc.<db>.<schema>.<table> for rows and
	// <prefix><aggregatetype>.changes for outbox rows (default
	// schema.DefaultTopicPrefix, "studio."). It should be the prefix of the
	// services' producers and enrichers.
	TopicPrefix string `yaml:"topic_prefix"`
	// Filter selects tables and columns.
	Filter cdc.Filter `yaml:"filter"`
	// MaxTxEvents bounds how many events of one transaction are held
	// before they are handed on without a position (default 1000).
	MaxTxEvents int `yaml:"max_tx_events"`
	// UnavailableValue is what an unchanged TOASTed column's new value
	// becomes when the server did not send it and there is no old row to
	// take it from (REPLICA IDENTITY other than FULL); the column is also
	// named in source.unchanged_toast. Default
	// DefaultUnavailableValue, the value Debezium uses.
	UnavailableValue string `yaml:"unavailable_value_placeholder"`
}

// DefaultUnavailableValue is the default Config.UnavailableValue, the
// same as Debezium's unavailable.value.placeholder, so consumers written
// for Debezium recognise it.
const DefaultUnavailableValue = "__debezium_unavailable_value"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

func (c *Config) defaults() {
	if c.Slot == "" {
		c.Slot = "slate"
	}
	if c.Publication == "" {
		c.Publication = "slate"
	}
	if c.StateTable == "" {
		c.StateTable = "slate_cdc_state"
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 10 * time.Second
	}
	if c.Outbox == "" {
		c.Outbox = cdc.OutboxTable
	}
	if c.MaxTxEvents == 0 {
		c.MaxTxEvents = 1000
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = schema.DefaultTopicPrefix
	}
	if c.UnavailableValue == "" {
		c.UnavailableValue = DefaultUnavailableValue
	}
}

// Validate fills defaults and reports the first wrong field.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.DSN == "":
		return fmt.Errorf("%w: dsn is empty", cdc.ErrConfig)
	case !identRE.MatchString(c.Slot):
		return fmt.Errorf("%w: slot %q: want a plain identifier", cdc.ErrConfig, c.Slot)
	case !identRE.MatchString(c.Publication):
		return fmt.Errorf("%w: publication %q: want a plain identifier", cdc.ErrConfig, c.Publication)
	case c.StateTable != "-" && !identRE.MatchString(c.StateTable):
		return fmt.Errorf("%w: state_table %q: want a plain identifier or -", cdc.ErrConfig, c.StateTable)
	case c.StatusInterval < 0:
		return fmt.Errorf("%w: status_interval %s is negative", cdc.ErrConfig, c.StatusInterval)
	case c.HeartbeatInterval > 0 && c.StateTable == "-":
		return fmt.Errorf("%w: heartbeat_interval needs a state_table", cdc.ErrConfig)
	case c.MaxTxEvents < 1:
		return fmt.Errorf("%w: max_tx_events %d, need at least 1", cdc.ErrConfig, c.MaxTxEvents)
	}
	if err := schema.ValidateTopicPrefix(c.TopicPrefix); err != nil {
		return fmt.Errorf("%w: topic_prefix: %w", cdc.ErrConfig, err)
	}
	return c.Filter.Validate()
}

type options struct {
	reg     schema.Registry
	log     *slog.Logger
	metrics *cdc.Metrics
}

// Option configures [New].
type Option func(*options)

// WithRegistry sets the schema registry row schemas are registered in and
// outbox payloads are decoded with. Required.
func WithRegistry(r schema.Registry) Option { return func(o *options) { o.reg = r } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics makes the source update m (lag, confirmed LSN, snapshot).
func WithMetrics(m *cdc.Metrics) Option { return func(o *options) { o.metrics = m } }
