package main

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Bounds of a rate flag (events per second): at least one a day, and no
// faster than a ticker can tick.
const (
	minRate = 1.0 / (24 * 60 * 60)
	maxRate = 1e6
)

// validateFlags checks the values of fs before a command starts anything,
// naming the first bad flag: every port (--port, --*-port) is 0-65535,
// every duration is non-negative, and --rate is a finite number of events
// per second a ticker can keep.
func validateFlags(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		switch {
		case f.Value.Type() == "int" && (f.Name == "port" || strings.HasSuffix(f.Name, "-port")):
			n, perr := strconv.Atoi(f.Value.String())
			if perr != nil {
				err = fmt.Errorf("--%s %q: %w", f.Name, f.Value.String(), perr)
				return
			}
			err = validatePort(f.Name, n)
		case f.Value.Type() == "duration":
			d, perr := time.ParseDuration(f.Value.String())
			if perr != nil {
				err = fmt.Errorf("--%s %q: %w", f.Name, f.Value.String(), perr)
				return
			}
			if d < 0 {
				err = fmt.Errorf("--%s %s: must not be negative", f.Name, d)
			}
		case f.Value.Type() == "float64" && f.Name == "rate":
			r, perr := strconv.ParseFloat(f.Value.String(), 64)
			if perr != nil {
				err = fmt.Errorf("--%s %q: %w", f.Name, f.Value.String(), perr)
				return
			}
			err = validateRate(f.Name, r)
		}
	})
	return err
}

// validatePort checks that n, the value of flag name, is a TCP port; 0
// asks the system for a free one.
func validatePort(name string, n int) error {
	if n < 0 || n > 65535 {
		return fmt.Errorf("--%s %d: must be a port, 0-65535 (0 picks a free one)", name, n)
	}
	return nil
}

// validateRate checks that r, the value of flag name, is a rate in events
// per second whose period a ticker can keep.
func validateRate(name string, r float64) error {
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return fmt.Errorf("--%s %v: must be a finite number of events per second", name, r)
	case r < minRate || r > maxRate:
		return fmt.Errorf("--%s %v: must be between %.6g (one a day) and %g events per second", name, r, minRate, maxRate)
	}
	if time.Duration(float64(time.Second)/r) <= 0 {
		return fmt.Errorf("--%s %v: period too short", name, r)
	}
	return nil
}

// checkOpenBind refuses host, the value of flag, when it is reachable from
// other machines and the server it names has no authentication, unless
// insecure (--insecure-bind) says to serve it open.
func checkOpenBind(flag, host string, insecure bool) error {
	if insecure || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s %s is reachable from other machines and has no authentication: pass --insecure-bind to serve it anyway", flag, host)
}
