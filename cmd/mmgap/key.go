package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

func newKeyCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Make and inspect the OpenPGP keys that sign and verify bundles",
	}
	c.AddCommand(newKeyGenerateCmd(a), newKeyShowCmd(a))
	return c
}

// passphraseFlags reads a passphrase from a file or an environment variable, never from a flag
// value, so it does not end up in shell history or the process list.
type passphraseFlags struct {
	file, env string
}

func (p *passphraseFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&p.file, "passphrase-file", "", "read the key's passphrase from this file (first line)")
	c.Flags().StringVar(&p.env, "passphrase-env", "", "read the key's passphrase from this environment variable")
}

func (p *passphraseFlags) read() ([]byte, error) {
	switch {
	case p.file != "" && p.env != "":
		return nil, usageErrorf("--passphrase-file and --passphrase-env: give one")
	case p.file != "":
		b, err := os.ReadFile(p.file)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		return bytes.TrimSuffix(b, []byte("\r")), nil
	case p.env != "":
		v, ok := os.LookupEnv(p.env)
		if !ok {
			return nil, usageErrorf("--passphrase-env %s: the variable is not set", p.env)
		}
		return []byte(v), nil
	}
	return nil, nil
}

func newKeyGenerateCmd(a *app) *cobra.Command {
	var (
		name, email, comment, out, algo string
		lifetime                        time.Duration
		force                           bool
		pass                            passphraseFlags
	)
	c := &cobra.Command{
		Use:   "generate --name NAME --email EMAIL -o PREFIX",
		Short: "Make an OpenPGP signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub",
		Long: `Make an OpenPGP signing key pair for bundles.

PREFIX.key holds the secret key (mode 0600; keep it on the connected side). PREFIX.pub holds the
public key: carry it to the isolated side out of band and pass it to 'mmgap bundle verify --trust'.
Protect the secret key with a passphrase from a file or an environment variable; without one the
key is stored unencrypted and mmgap says so.`,
		Example: `  mmgap key generate --name "Site Ops" --email ops@example.org -o signing --passphrase-env MMGAP_PASSPHRASE
  gpg --import signing.pub   # plain gpg can verify what mmgap signs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("-o PREFIX is required")
			}
			if name == "" && email == "" {
				return usageErrorf("give --name or --email (or both): they form the key's user ID")
			}
			pp, err := pass.read()
			if err != nil {
				return err
			}
			secPath, pubPath := out+".key", out+".pub"
			for _, p := range []string{secPath, pubPath} {
				if _, err := os.Stat(p); err == nil && !force {
					return withHint(fmt.Errorf("%s exists", p), "choose another -o PREFIX, or pass --force to replace it")
				} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			sec, pub, fp, err := pgp.GenerateKey(pgp.KeyOptions{Name: name, Email: email, Comment: comment,
				Passphrase: pp, Lifetime: lifetime, Algorithm: pgp.Algorithm(algo)})
			if err != nil {
				return err
			}
			if err := store.WriteFileAtomic(secPath, sec, 0o600); err != nil {
				return err
			}
			if err := store.WriteFileAtomic(pubPath, pub, 0o644); err != nil {
				return err
			}
			res := map[string]any{"secretKey": secPath, "publicKey": pubPath, "fingerprint": fp, "encrypted": len(pp) > 0}
			if a.json() {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "secret key:  %s (mode 0600)\npublic key:  %s\nfingerprint: %s\n", secPath, pubPath, pgp.FormatFingerprint(fp))
			if len(pp) == 0 {
				fmt.Fprintln(a.stderr, "mmgap: warning: the secret key is not protected by a passphrase (see --passphrase-file)")
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "user ID name")
	c.Flags().StringVar(&email, "email", "", "user ID email")
	c.Flags().StringVar(&comment, "comment", "", "user ID comment")
	c.Flags().StringVarP(&out, "out", "o", "", "path prefix of the key files")
	c.Flags().StringVar(&algo, "algorithm", string(pgp.AlgorithmEd25519), "ed25519, rsa3072 or rsa4096")
	c.Flags().DurationVar(&lifetime, "lifetime", 0, "key validity, e.g. 17520h for two years (0: no expiry)")
	c.Flags().BoolVar(&force, "force", false, "replace existing key files")
	pass.register(c)
	return c
}

func newKeyShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show KEYFILE...",
		Short: "List the keys in OpenPGP key files (fingerprint, user ID, created, expiry)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := pgp.ReadKeyring(args...)
			if err != nil {
				return err
			}
			keys := kr.Keys()
			if a.json() {
				return a.printJSON(keys)
			}
			for _, k := range keys {
				fmt.Fprintf(a.stdout, "%s  %s  created %s\n", pgp.FormatFingerprint(k.Fingerprint), strings.TrimSpace(k.UserID), k.Created.UTC().Format(time.DateOnly))
			}
			return nil
		},
	}
}
