package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// limits bound the schemas a client may register. Zero means no bound, as
// for records replayed from the store, which the registry accepted once.
type limits struct {
	maxBytes  int // of the schema text
	maxFields int // record fields, summed over every record in the schema
}

// errTooLarge is the error of a schema over a limit; the handlers answer it
// with [CodeSchemaTooLarge].
type errTooLarge struct{ detail string }

func (e *errTooLarge) Error() string { return e.detail }

// parseAvro parses text as a self-contained Avro schema. Every parse gets its
// own name cache, so a schema cannot lean on names another schema defined.
// The size and field count are checked before the Avro parser runs, so an
// oversized schema costs no more than reading its JSON.
func parseAvro(text string, lim limits) (parsedSchema, error) {
	if strings.TrimSpace(text) == "" {
		return parsedSchema{}, errors.New("empty schema")
	}
	if lim.maxBytes > 0 && len(text) > lim.maxBytes {
		return parsedSchema{}, &errTooLarge{fmt.Sprintf("%d bytes, the limit is %d", len(text), lim.maxBytes)}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		return parsedSchema{}, err
	}
	key, fields, err := identity(compact.Bytes())
	if err != nil {
		return parsedSchema{}, err
	}
	if lim.maxFields > 0 && fields > lim.maxFields {
		return parsedSchema{}, &errTooLarge{fmt.Sprintf("%d record fields, the limit is %d", fields, lim.maxFields)}
	}
	s, err := parseUntrusted(text)
	if err != nil {
		return parsedSchema{}, err
	}
	return parsedSchema{parsed: s, text: compact.String(), key: key}, nil
}

// parseUntrusted runs the Avro parser on a schema that a client or another
// registry wrote. The parser panics on some malformed schemas (an empty
// union with a default, for one); here such a panic becomes an error, so
// that no schema can take the server, or its replay of the store, down.
func parseUntrusted(text string) (s avro.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("the Avro parser failed on this schema: %v", r)
		}
	}()
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// identity returns the normal form that decides whether two schema texts are
// the same schema: the JSON with object keys sorted, numbers as written, and
// {"type":"int"} folded to "int", as Avro's own printer does. Docs, defaults,
// aliases and custom properties are kept: a schema that differs in a default
// is a different schema, with its own id. It also counts the record fields
// the text declares.
func identity(text []byte) (key string, fields int, err error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", 0, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fold(v, &fields)); err != nil {
		return "", 0, err
	}
	return strings.TrimSpace(out.String()), fields, nil
}

func fold(v any, fields *int) any {
	switch v := v.(type) {
	case map[string]any:
		if fs, ok := v["fields"].([]any); ok {
			*fields += len(fs)
		}
		for k, e := range v {
			v[k] = fold(e, fields)
		}
		if t, ok := v["type"].(string); ok && len(v) == 1 && isPrimitive(t) {
			return t
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = fold(e, fields)
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
