package graphql

import "testing"

// Every term of a search is required, phrases stay whole, and the status
// is one more required term.
func TestQueryString(t *testing.T) {
	for _, tc := range []struct{ search, status, want string }{
		{"", "", ""},
		{"*", "", ""},
		{"", "PRODUCTION", `+status:"PRODUCTION"`},
		{"heat slate", "", "+heat +slate"},
		{`name:"the heat" -kind:series`, "", `+name:"the heat" -kind:series`},
		{`+name:heat  budget:>10`, `in "post"`, `+name:heat +budget:>10 +status:"in \"post\""`},
		{`name:"a \" b" c`, "", `+name:"a \" b" +c`},
		{"", "après", `+status:"après"`},
	} {
		if got := queryString(tc.search, tc.status); got != tc.want {
			t.Errorf("queryString(%q, %q) = %q, want %q", tc.search, tc.status, got, tc.want)
		}
	}
}

// A cursor reads back as the offset it was made of; anything else is
// refused.
func TestCursor(t *testing.T) {
	for _, n := range []int{0, 1, 99, 10000} {
		if got, err := decodeCursor(encodeCursor(n)); err != nil || got != n {
			t.Errorf("decodeCursor(encodeCursor(%d)) = %d, %v", n, got, err)
		}
	}
	for _, c := range []string{"", "x", "dGl0bGVzOi0x" /* titles:-1 */, "b3RoZXI6MQ" /* other:1 */} {
		if _, err := decodeCursor(c); err == nil {
			t.Errorf("decodeCursor(%q) took it", c)
		}
	}
}

// Ranges of quoted values, Bleve's form, become Elasticsearch's; the rest
// of a query string is left as it is.
func TestESQueryString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`+release_date:>="2027-01-01" +release_date:<="2027-12-31"`, `+release_date.keyword:>=2027\-01\-01 +release_date.keyword:<=2027\-12\-31`},
		{`+name:"the heat" budget:>10`, `+name:"the heat" budget:>10`},
		{`+slate.time:>"2027-01-01T00:00:00Z"`, `+slate.time:>2027\-01\-01T00\:00\:00Z`},
	} {
		if got := esQueryString(tc.in); got != tc.want {
			t.Errorf("esQueryString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
