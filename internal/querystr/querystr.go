// Package querystr splits Bleve/Lucene query strings, the syntax the
// GraphQL API takes and the Elasticsearch double parses.
package querystr

import (
	"strings"
	"unicode"
)

// Split splits a query string into its clauses at white space outside
// quoted phrases; a backslash escapes the character after it (a quote or
// a space stays in its clause).
func Split(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped := false, false
	for _, c := range s {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && unicode.IsSpace(c):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(c)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
