package registry

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ErrInvalidUsers is wrapped by [LoadUsers] and [ParseUsers] for a users
// file that cannot be read or has a bad line.
var ErrInvalidUsers = errors.New("registry: invalid users file")

// Role is what an authenticated user may do.
type Role string

// The roles of a users file. A user without a role is [RoleReadWrite].
const (
	// RoleReadWrite may read and change schemas and configuration.
	RoleReadWrite Role = "readwrite"
	// RoleReadOnly may only read: a change is refused with 403 (40301).
	RoleReadOnly Role = "readonly"
)

type user struct {
	bcrypt []byte            // a bcrypt hash, or nil
	plain  [sha256.Size]byte // the hash of a plaintext password, compared in constant time
	role   Role
}

// Users are the accounts of HTTP basic authentication ([WithUsers]). It is
// safe for concurrent use once built.
type Users struct {
	m map[string]user
}

// LoadUsers reads a users file; see [ParseUsers] for the format.
func LoadUsers(path string) (*Users, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidUsers, err)
	}
	u, err := ParseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// ParseUsers parses users in the format of the Jetty property file that
// Confluent's registry reads for basic authentication: one user a line,
//
//	name: password[,role]
//
// where the password is a bcrypt hash ($2a$, $2b$ or $2y$, as htpasswd -B
// writes them) or plaintext, and the role is readwrite (the default) or
// readonly. Blank lines and lines starting with # are ignored. At least one
// user is required.
func ParseUsers(b []byte) (*Users, error) {
	u := &Users{m: make(map[string]user)}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		name, rest = strings.TrimSpace(name), strings.TrimSpace(rest)
		if !ok || name == "" || rest == "" {
			return nil, fmt.Errorf("%w: line %d: want name: password[,role]", ErrInvalidUsers, n)
		}
		password, role := rest, RoleReadWrite
		if i := strings.LastIndex(rest, ","); i >= 0 {
			switch r := Role(strings.ToLower(strings.TrimSpace(rest[i+1:]))); r {
			case RoleReadWrite, RoleReadOnly:
				password, role = strings.TrimSpace(rest[:i]), r
			default:
				return nil, fmt.Errorf("%w: line %d: role %q is not readwrite or readonly", ErrInvalidUsers, n, r)
			}
		}
		if err := u.Add(name, password, role); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrInvalidUsers, n, err)
		}
	}
	if len(u.m) == 0 {
		return nil, fmt.Errorf("%w: no users", ErrInvalidUsers)
	}
	return u, nil
}

// Add adds (or replaces) a user; password is a bcrypt hash or plaintext.
func (u *Users) Add(name, password string, role Role) error {
	if u.m == nil {
		u.m = make(map[string]user)
	}
	if name == "" || strings.ContainsAny(name, ":\r\n") || password == "" {
		return errors.New("a user needs a name without ':' and a password")
	}
	if role == "" {
		role = RoleReadWrite
	}
	e := user{role: role}
	if isBcrypt(password) {
		if _, err := bcrypt.Cost([]byte(password)); err != nil {
			return fmt.Errorf("user %s: bcrypt hash: %w", name, err)
		}
		e.bcrypt = []byte(password)
	} else {
		e.plain = sha256.Sum256([]byte(password))
	}
	u.m[name] = e
	return nil
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// authenticate returns the role of the user the request names, or false.
func (u *Users) authenticate(r *http.Request) (Role, bool) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	e, known := u.m[name]
	if !known {
		// Spend the time a known user costs, so that timing does not tell
		// names apart.
		e = user{plain: sha256.Sum256([]byte{0})}
	}
	var match bool
	if e.bcrypt != nil {
		match = bcrypt.CompareHashAndPassword(e.bcrypt, []byte(password)) == nil
	} else {
		sum := sha256.Sum256([]byte(password))
		match = subtle.ConstantTimeCompare(sum[:], e.plain[:]) == 1
	}
	return e.role, known && match
}

// WithUsers turns on HTTP basic authentication: every request but GET
// /healthz must name one of users, or is answered 401 with a
// WWW-Authenticate challenge and Confluent's error body (40101); a
// readonly user's changes are answered 403 (40301).
func WithUsers(users *Users) Option { return func(o *options) { o.users = users } }

// WithReadOnly starts the registry in READONLY mode, Confluent's mode for a
// registry that serves but does not change: every change (register,
// delete, PUT and DELETE /config) is refused with 422 and
// [CodeOperationNotPermitted] (42205), as Confluent's server refuses them
// in that mode. GET /mode answers the mode; it cannot be changed over HTTP.
func WithReadOnly(readOnly bool) Option { return func(o *options) { o.readOnly = readOnly } }

func errUnauthorized() *apiError {
	return &apiError{http.StatusUnauthorized, CodeUnauthorized, "Unauthorized"}
}

func errForbidden(method, path string) *apiError {
	return &apiError{http.StatusForbidden, CodeForbidden,
		fmt.Sprintf("User is denied operation %s on %s", method, truncate(path, maxEchoBytes))}
}

func errReadOnly() *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeOperationNotPermitted,
		"The registry is in read-only mode (READONLY): changes are not permitted"}
}

// mutates reports whether a request would change the registry. A POST to
// /subjects/{subject} (lookup) or /compatibility/... only reads.
func mutates(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	case http.MethodPost:
		return strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/versions") &&
			strings.HasPrefix(r.URL.Path, "/subjects/")
	}
	return true
}

// guard authenticates and authorizes a request; it returns the error to
// answer, or nil to serve it.
func (s *Server) guard(r *http.Request) *apiError {
	if r.URL.Path == "/healthz" {
		return nil
	}
	if s.users != nil {
		role, ok := s.users.authenticate(r)
		if !ok {
			return errUnauthorized()
		}
		if role == RoleReadOnly && mutates(r) {
			return errForbidden(r.Method, r.URL.Path)
		}
	}
	if s.readOnly && mutates(r) && !strings.HasPrefix(r.URL.Path, "/mode") {
		return errReadOnly()
	}
	return nil
}

type modeResponse struct {
	Mode string `json:"mode"`
}

func (s *Server) getMode(_ http.ResponseWriter, _ *http.Request) (any, error) {
	if s.readOnly {
		return modeResponse{"READONLY"}, nil
	}
	return modeResponse{"READWRITE"}, nil
}

func (s *Server) putMode(_ http.ResponseWriter, _ *http.Request) (any, error) {
	return nil, &apiError{http.StatusUnprocessableEntity, CodeOperationNotPermitted,
		"The mode is set when the registry starts (read-only or not); it cannot be changed over HTTP"}
}
