package graphql

// The schema's code, by the gqlgen pinned in go.mod's tool block.
//go:generate go tool gqlgen generate --config gqlgen.yml
