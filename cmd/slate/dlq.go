package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// dlqFlags are the flags list and replay share.
type dlqFlags struct {
	topic       string
	brokers     string
	registryURL string
	kafka       kafkaFlags
}

func (f *dlqFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.topic, "topic", "", "the dead-letter topic, or the topic whose <topic>.dlq to read (required)")
	cmd.Flags().StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap servers")
	cmd.Flags().StringVar(&f.registryURL, "registry-url", "", "schema registry URL (list: decode envelopes; replay: required)")
	f.kafka.bind(cmd.Flags())
	cmd.PreRunE = func(*cobra.Command, []string) error { return f.kafka.validate(f.brokers) }
}

// dlqTopic is the dead-letter topic the flags name.
func (f *dlqFlags) dlqTopic() (string, error) {
	switch {
	case f.topic == "":
		return "", errors.New("--topic is required")
	case strings.HasSuffix(f.topic, ".dlq"):
		return f.topic, nil
	}
	return schema.DLQTopic(f.topic), nil
}

func dlqCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay dead-letter topics (<topic>.dlq)",
	}
	cmd.AddCommand(dlqListCmd(), dlqReplayCmd())
	return cmd
}

func dlqListCmd() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the records of a dead-letter topic with their slate_dlq_* headers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topic, err := f.dlqTopic()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var codec *schema.Codec
			if f.registryURL != "" {
				reg, err := schema.NewRegistryClient(f.registryURL)
				if err != nil {
					return err
				}
				if codec, err = schema.NewCodec(reg); err != nil {
					return err
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PARTITION\tOFFSET\tORIGIN\tSTAGE\tGROUP\tKEY\tENVELOPE\tERROR")
			n := 0
			err = consumer.ReadDeadLetters(ctx, f.brokers, topic, func(d consumer.DeadLetter) error {
				n++
				env := "-"
				if d.Truncated > 0 {
					env = fmt.Sprintf("truncated: %d of %d bytes", len(d.Value), d.Truncated)
				} else if codec != nil {
					if e, err := codec.Decode(ctx, d.Value); err == nil {
						env = fmt.Sprintf("%s %s %s/%s seq=%d", e.ID, e.Type, e.EntityType, e.Subject, e.Sequence)
					} else {
						env = "undecodable"
					}
				}
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%q\t%s\t%s\n", d.Partition, d.Offset,
					origin(d), orDash(d.Stage), orDash(d.Group), d.Key, env, oneLine(d.Error))
				return nil
			}, f.kafka.consumerOptions(f.brokers)...)
			if err != nil {
				return err
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.ErrOrStderr(), "%d dead letters in %s\n", n, topic)
			return err
		},
	}
	f.bind(cmd)
	return cmd
}

func dlqReplayCmd() *cobra.Command {
	var f dlqFlags
	var partition int
	var offset int64
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Re-publish dead letters (their original bytes and headers) to the replay topic (<origin>.dlq.replay) that the failing group reads",
		Long: `replay re-publishes every record of the dead-letter topic, or the one at
--partition/--offset, to the replay topic of the topic it came from
(<origin>.dlq.replay, origin from header slate_dlq_origin_topic), with its
original key, value and headers and a slate_dlq_replayed_from header. The
consumers of the origin topic read its replay topic, and only the group
that dead-lettered a record (header slate_dlq_group) takes it.
Records stay in the dead-letter topic; consumers drop what was applied since
by its envelope id. A truncated dead letter (header slate_dlq_truncated: the
record was larger than the dead-letter topic accepts) is not replayed: it is
reported with the origin offset of the whole record, and replay exits non-zero.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topic, err := f.dlqTopic()
			if err != nil {
				return err
			}
			if f.registryURL == "" {
				return errors.New("--registry-url is required to replay")
			}
			if (partition < 0) != (offset < 0) {
				return errors.New("--partition and --offset go together")
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			reg, err := schema.NewRegistryClient(f.registryURL)
			if err != nil {
				return err
			}
			// Sized to the brokers' and the origin topic's limit: a dead
			// letter may be as large as its origin topic accepts.
			pub, err := producer.New(append([]producer.Option{producer.WithBrokers(f.brokers), producer.WithRegistry(reg),
				producer.WithSource("//slate/dlq"), producer.WithLogger(log),
				producer.WithBrokerMessageLimit(0, strings.TrimSuffix(topic, ".dlq"))}, f.kafka.producerOptions(f.brokers)...)...)
			if err != nil {
				return err
			}
			defer pub.Close(ctx)
			n, truncated := 0, 0
			err = consumer.ReadDeadLetters(ctx, f.brokers, topic, func(d consumer.DeadLetter) error {
				if partition >= 0 && (d.Partition != int32(partition) || d.Offset != offset) {
					return nil
				}
				if err := consumer.Replay(ctx, pub, d); errors.Is(err, consumer.ErrTruncated) {
					truncated++
					log.Error("truncated dead letter not replayed; replay the whole record from its origin", "err", err)
					return nil
				} else if err != nil {
					return err
				}
				n++
				log.Info("dead letter replayed", "dlq", topic, "partition", d.Partition, "offset", d.Offset, "to", origin(d))
				return nil
			}, f.kafka.consumerOptions(f.brokers)...)
			if err != nil {
				return err
			}
			if partition >= 0 && n+truncated == 0 {
				return fmt.Errorf("no record at %s/%d/%d", topic, partition, offset)
			}
			if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters replayed from %s\n", n, topic); err != nil {
				return err
			}
			if truncated > 0 {
				return fmt.Errorf("%d truncated dead letters of %s not replayed (see the log for where the whole records are): %w",
					truncated, topic, consumer.ErrTruncated)
			}
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().IntVar(&partition, "partition", -1, "replay only the record at this partition (with --offset)")
	cmd.Flags().Int64Var(&offset, "offset", -1, "replay only the record at this offset (with --partition)")
	return cmd
}

func origin(d consumer.DeadLetter) string {
	if d.OriginTopic == "" {
		return "-"
	}
	return d.OriginTopic + "/" + strconv.Itoa(int(d.OriginPartition)) + "/" + strconv.FormatInt(d.OriginOffset, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
