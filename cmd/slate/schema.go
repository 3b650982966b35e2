package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2/registry"
	"github.com/spf13/cobra"

	"github.com/slatehq/slate/internal/stack"
)

// errIncompatible makes `slate schema check` exit non-zero when the schema
// would be refused.
var errIncompatible = errors.New("schema is not compatible")

func schemaCmd() *cobra.Command {
	var (
		url string
		sec stack.Security
	)
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Register, check and read Avro schemas in a Confluent-compatible registry",
		Long: `Talk to a schema registry over the Confluent REST API: slate's own
(slate registry) or a Confluent Schema Registry. SCHEMA-FILE is a file
holding an Avro schema as JSON, or - for standard input. A registry with
TLS or basic auth (slate up --secure, slate registry --users-file) takes
--tls-ca, --tls-client-cert/--tls-client-key and
--registry-basic-auth-user-info.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&url, "registry-url", "http://127.0.0.1:8081", "schema registry URL")
	pf.StringVar(&sec.CAFile, "tls-ca", "", "PEM CA bundle that signed the registry's certificate (empty: the system's)")
	pf.StringVar(&sec.ClientCertFile, "tls-client-cert", "", "PEM client certificate to present (mutual TLS)")
	pf.StringVar(&sec.ClientKeyFile, "tls-client-key", "", "PEM private key of --tls-client-cert")
	pf.StringVar(&sec.RegistryUserInfo, "registry-basic-auth-user-info", "", "user:password for HTTP basic auth (prefer SLATE_REGISTRY_BASIC_AUTH_USER_INFO)")
	client := func() (*registry.Client, error) {
		opts, err := sec.RegistryClientOptions()
		if err != nil {
			return nil, err
		}
		c, err := registry.NewClient(url, opts...)
		if err != nil {
			return nil, fmt.Errorf("--registry-url %q: %w", url, err)
		}
		return c, nil
	}
	// clientAndSchema is the start of the commands that send a schema file.
	clientAndSchema := func(cmd *cobra.Command, path string) (*registry.Client, string, error) {
		c, err := client()
		if err != nil {
			return nil, "", err
		}
		s, err := readSchema(cmd, path)
		return c, s, err
	}

	register := &cobra.Command{
		Use:   "register SUBJECT SCHEMA-FILE",
		Short: "Register a schema under a subject and print its id and version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := clientAndSchema(cmd, args[1])
			if err != nil {
				return err
			}
			id, _, err := c.CreateSchema(cmd.Context(), args[0], s)
			if err != nil {
				return fmt.Errorf("register %s: %w", args[0], err)
			}
			v, err := versionOf(cmd, c, args[0], id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "subject %s version %d id %d\n", args[0], v, id)
			return nil
		},
	}

	check := &cobra.Command{
		Use:   "check SUBJECT SCHEMA-FILE",
		Short: "Check a schema against a subject's compatibility level; exits 1 when incompatible",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := clientAndSchema(cmd, args[1])
			if err != nil {
				return err
			}
			ok, err := c.IsCompatible(cmd.Context(), args[0], s)
			var re registry.Error
			if errors.As(err, &re) && re.Code == 40401 {
				fmt.Fprintf(cmd.OutOrStdout(), "compatible: subject %s does not exist yet\n", args[0])
				return nil
			}
			if err != nil {
				return fmt.Errorf("check %s: %w", args[0], err)
			}
			if !ok {
				fmt.Fprintf(cmd.OutOrStdout(), "incompatible with subject %s\n", args[0])
				return fmt.Errorf("%s: %w", args[0], errIncompatible)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compatible with subject %s\n", args[0])
			return nil
		},
	}

	var id int
	get := &cobra.Command{
		Use:   "get [SUBJECT [VERSION|latest]]",
		Short: "Print a schema: a subject's version (default latest), or by global id with --id",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			switch {
			case id > 0 && len(args) > 0:
				return errors.New("give either --id or a subject, not both")
			case id > 0:
				s, err := c.GetSchema(ctx, id)
				if err != nil {
					return fmt.Errorf("get id %d: %w", id, err)
				}
				return printSchema(out, s.String())
			case len(args) == 0:
				return errors.New("give a subject or --id")
			}
			var info registry.SchemaInfo
			if len(args) == 1 || args[1] == "latest" {
				info, err = c.GetLatestSchemaInfo(ctx, args[0])
			} else {
				v, perr := strconv.Atoi(args[1])
				if perr != nil || v < 1 {
					return fmt.Errorf("version %q: want a positive number or latest", args[1])
				}
				info, err = c.GetSchemaInfo(ctx, args[0], v)
			}
			if err != nil {
				return fmt.Errorf("get %s: %w", args[0], err)
			}
			fmt.Fprintf(out, "# subject %s version %d id %d\n", args[0], info.Version, info.ID)
			return printSchema(out, info.Schema.String())
		},
	}
	get.Flags().IntVar(&id, "id", 0, "global schema id")

	list := &cobra.Command{
		Use:   "list [SUBJECT]",
		Short: "List subjects, or the versions of one subject",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				vs, err := c.GetVersions(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("list %s: %w", args[0], err)
				}
				for _, v := range vs {
					fmt.Fprintln(out, v)
				}
				return nil
			}
			ss, err := c.GetSubjects(cmd.Context())
			if err != nil {
				return fmt.Errorf("list subjects: %w", err)
			}
			for _, s := range ss {
				fmt.Fprintln(out, s)
			}
			return nil
		},
	}

	cmd.AddCommand(register, check, get, list)
	return cmd
}

// versionOf returns the version of subject that holds schema id (the
// create call answers with the id only).
func versionOf(cmd *cobra.Command, c *registry.Client, subject string, id int) (int, error) {
	vs, err := c.GetVersions(cmd.Context(), subject)
	if err != nil {
		return 0, fmt.Errorf("versions of %s: %w", subject, err)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		info, err := c.GetSchemaInfo(cmd.Context(), subject, vs[i])
		if err != nil {
			return 0, fmt.Errorf("version %d of %s: %w", vs[i], subject, err)
		}
		if info.ID == id {
			return info.Version, nil
		}
	}
	return 0, fmt.Errorf("subject %s has no version with id %d", subject, id)
}

func readSchema(cmd *cobra.Command, path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(cmd.InOrStdin())
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read schema: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if !json.Valid([]byte(s)) {
		return "", fmt.Errorf("schema %s is not JSON", path)
	}
	return s, nil
}

func printSchema(w io.Writer, s string) error {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		_, err = fmt.Fprintln(w, s)
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
