package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mmgap/mmgap/internal/pgp"
)

// signFlags choose how a bundle is signed.
type signFlags struct {
	key      string
	unsigned bool
	pass     passphraseFlags
}

func (s *signFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&s.key, "sign-key", "", "OpenPGP secret key file that signs the bundle (see 'mmgap key generate')")
	c.Flags().BoolVar(&s.unsigned, "insecure-unsigned", false, "make a bundle with NO signature (verifiers refuse it unless told to skip signatures)")
	s.pass.register(c)
}

// signer loads the key before any long work starts, so a wrong passphrase fails fast.
func (s *signFlags) signer(warn io.Writer) (*pgp.Signer, error) {
	switch {
	case s.key == "" && !s.unsigned:
		return nil, withHint(usageErrorf("no --sign-key: bundles are signed"),
			"make a key with 'mmgap key generate -o signing' and pass --sign-key signing.key; --insecure-unsigned makes an unsigned bundle")
	case s.key != "" && s.unsigned:
		return nil, usageErrorf("--sign-key and --insecure-unsigned: give one")
	case s.unsigned:
		return nil, nil
	}
	pp, err := s.pass.read()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.key)
	if err != nil {
		return nil, fmt.Errorf("sign key: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "mmgap: warning: %s is readable by others (mode %04o); chmod 600 it\n", s.key, fi.Mode().Perm())
	}
	sg, err := pgp.ReadSecretKey(f, pp)
	if errors.Is(err, pgp.ErrPassphrase) {
		return nil, withHint(fmt.Errorf("sign key %s: %w", s.key, err), "give the passphrase with --passphrase-file or --passphrase-env")
	}
	if err != nil {
		return nil, fmt.Errorf("sign key %s: %w", s.key, err)
	}
	return sg, nil
}

// trustFlags choose the keys a bundle must be signed by.
type trustFlags struct {
	files        []string
	skip         bool
	allowExpired bool
}

func (t *trustFlags) register(c *cobra.Command) {
	c.Flags().StringArrayVar(&t.files, "trust", nil, "OpenPGP public key file trusted to sign bundles (repeatable)")
	c.Flags().BoolVar(&t.skip, "insecure-skip-signature", false, "do NOT check the signature: nothing then vouches for where the bundle came from")
	c.Flags().BoolVar(&t.allowExpired, "allow-expired-signer", false, "accept a bundle signed before its signing key expired")
}

func (t *trustFlags) keyring(required bool) (pgp.Keyring, error) {
	if len(t.files) == 0 {
		if required && !t.skip {
			return pgp.Keyring{}, withHint(usageErrorf("no --trust key: the bundle's signature must be checked against a key you trust"),
				"pass the signer's public key, e.g. --trust signing.pub")
		}
		return pgp.Keyring{}, nil
	}
	return pgp.ReadKeyring(t.files...)
}
