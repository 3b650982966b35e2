package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/hamba/avro/v2"
)

// avroType is the schemaType of Avro schemas; an empty schemaType means it.
const avroType = "AVRO"

// parsedSchema is a schema that parsed, with the forms the registry keeps.
type parsedSchema struct {
	parsed avro.Schema
	text   string // the schema as sent, compacted: what the registry serves
	key    string // the identity: equal keys mean the same schema and id
}

// parseAvro parses text as a self-contained Avro schema. Every parse gets its
// own name cache, so a schema cannot lean on names another schema defined.
func parseAvro(text string) (parsedSchema, error) {
	if strings.TrimSpace(text) == "" {
		return parsedSchema{}, errors.New("empty schema")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		return parsedSchema{}, err
	}
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return parsedSchema{}, err
	}
	key, err := identity(compact.Bytes())
	if err != nil {
		return parsedSchema{}, err
	}
	return parsedSchema{parsed: s, text: compact.String(), key: key}, nil
}

// identity returns the normal form that decides whether two schema texts are
// the same schema: the JSON with object keys sorted, numbers as written, and
// {"type":"int"} folded to "int", as Avro's own printer does. Docs, defaults,
// aliases and custom properties are kept: a schema that differs in a default
// is a different schema, with its own id.
func identity(text []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fold(v)); err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

func fold(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = fold(e)
		}
		if t, ok := v["type"].(string); ok && len(v) == 1 && isPrimitive(t) {
			return t
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = fold(e)
		}
		return v
	}
	return v
}

func isPrimitive(t string) bool {
	switch t {
	case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
		return true
	}
	return false
}
