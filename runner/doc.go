// Package runner runs slate's pipelines from one YAML file (slate.yaml):
// enrich pipelines, which turn ID-only change events into materialized
// records by asking gRPC services slate has no code for (through
// enricher/grpcresolver), and sink pipelines, which deduplicate
// materialized events and write them to Elasticsearch, an embedded search
// index (bleve), a Hive table or another Kafka topic.
//
//	kafka:
//	  brokers: kafka-1:9092,kafka-2:9092
//	  sasl: {mechanism: SCRAM-SHA-256, username: slate, password: secret}
//	registry:
//	  url: http://registry:8081
//	enrich:
//	  - entity_type: asset
//	    resolvers:
//	      asset:
//	        target: assets:9090
//	        rpc: studio.assets.v1.Assets/BatchGetAssets
//	        records_field: assets
//	        version_field: revision
//	sink:
//	  - name: asset-search
//	    inputs: [studio.asset.materialized]
//	    dedupe: {type: redis, addr: 127.0.0.1:6379}
//	    sinks:
//	      - {type: es, url: http://es:9200}
//	      - {type: hive, root: /data/hive, table: asset}
//
// [Load] decodes strictly (an unknown key is an error), fills the defaults
// ([Config.Defaults]) and validates ([Config.Validate]); every error names
// the setting by its YAML path, as in
// "enrich[0].resolvers.asset.target: required".
//
// Settings are taken, highest first, from the command-line flags of slate
// enrich and slate sink, then the environment (SLATE_KAFKA_BROKERS
// replaces kafka.brokers, SLATE_REGISTRY_URL registry.url; see
// [Config.ApplyEnv]), then the file, then the defaults.
//
// [Start] (and [Run]) starts the selected pipelines, each a member of the
// consumer group named after it. Every resolver is dialled and checked
// against the service's descriptors at start, so a resolver that names a
// method the service lacks, an ids field of the wrong type or a target
// nothing answers on fails the start with the YAML path of the resolver.
// When the context ends, in-flight batches finish, offsets are committed,
// the consumers leave their groups, and Run returns nil.
package runner
