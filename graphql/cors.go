package graphql

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/cors"
)

// corsMaxAge is how long (seconds) a browser may keep a preflight's answer.
const corsMaxAge = 600

// validateOrigins reports the first of origins that is not "*" or an
// origin (scheme://host[:port], with at most one "*" in the host, as in
// https://*.example.com); it wraps [ErrConfig].
func validateOrigins(origins []string) error {
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(strings.Replace(o, "*", "wildcard", 1))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Count(o, "*") > 1 {
			return fmt.Errorf("%w: AllowedOrigins: %q is not an origin (scheme://host[:port], or *)", ErrConfig, o)
		}
	}
	return nil
}

// withCORS answers cross-origin requests from origins: preflights
// (OPTIONS with Access-Control-Request-Method) get the methods and headers
// /query takes, and the answers to the origins' requests name them in
// Access-Control-Allow-Origin. A request from any other origin gets no
// CORS headers, so the browser keeps the answer from its page. No origins
// leave h as it is.
func withCORS(origins []string, h http.Handler) http.Handler {
	if len(origins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Content-Type", "Accept", "Authorization"},
		MaxAge:         corsMaxAge,
	}).Handler(h)
}
