package main

import (
	"errors"

	"github.com/mmgap/mmgap/internal/bundle"
	"github.com/mmgap/mmgap/internal/gather"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

// isIntegrity reports failures that mean "this content cannot be trusted" (exit 4).
func isIntegrity(err error) bool {
	var ie *bundle.IntegrityError
	var se *bundle.SignatureError
	var pe *gather.PartialError
	if errors.As(err, &pe) {
		return false // a gather failure is reported as partial, whatever its cause
	}
	var de *store.DigestError
	return errors.As(err, &ie) || errors.As(err, &se) || errors.As(err, &de) ||
		errors.Is(err, bundle.ErrNotBundle) || errors.Is(err, pgp.ErrBadSignature) ||
		errors.Is(err, pgp.ErrUnknownSigner)
}
